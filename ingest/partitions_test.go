package ingest

import "testing"

func TestPartitionSetChanges(t *testing.T) {
	was := partitionSet{{OID: 1, Filenode: 10, Name: "p1"}, {OID: 2, Filenode: 20, Name: "p2"}, {OID: 3, Filenode: 30, Name: "p3"}}
	same := partitionSet{{OID: 1, Filenode: 10, Name: "renamed"}, {OID: 2, Filenode: 20, Name: "p2"}, {OID: 3, Filenode: 30, Name: "p3"}}
	if why := same.changes(was); why != "" {
		t.Errorf("renamed partition: %q, want no change", why)
	}
	now := partitionSet{{OID: 1, Filenode: 11, Name: "p1"}, {OID: 3, Filenode: 30, Name: "p3"}, {OID: 4, Filenode: 40, Name: "p4"}}
	want := "partitions attached: p4; partitions detached or dropped: p2; partitions truncated or rewritten (TRUNCATE, VACUUM FULL, CLUSTER): p1"
	if why := now.changes(was); why != want {
		t.Errorf("changes = %q, want %q", why, want)
	}
	back, err := decodePartitionSet(now.encode())
	if err != nil || back.changes(now) != "" || len(back) != 3 {
		t.Errorf("encode/decode: %v %v", back, err)
	}
	if got := partitionSet(nil).encode(); got != "[]" {
		t.Errorf("empty set encodes as %q, want []", got)
	}
}
