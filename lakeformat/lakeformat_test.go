package lakeformat

import (
	"strings"
	"testing"
)

// TestMetaFields: the metadata columns are the Col names, in order, each
// starting with MetaPrefix, and a caller changing its copy leaves the
// next one alone.
func TestMetaFields(t *testing.T) {
	want := []string{ColOp, ColLSN, ColSeq, ColXID, ColCommitTS, ColUnchanged}
	f := MetaFields()
	if len(f) != len(want) {
		t.Fatalf("%d metadata fields, want %d", len(f), len(want))
	}
	for i, name := range want {
		if f[i].Name != name || !strings.HasPrefix(name, MetaPrefix) {
			t.Errorf("field %d is %q, want %q starting with %q", i, f[i].Name, name, MetaPrefix)
		}
	}
	f[0].Name = "changed"
	if MetaFields()[0].Name != ColOp {
		t.Error("MetaFields returns a shared slice")
	}
}

// TestIdents: a snapshot table and its changelog share the namespace,
// the changelog's name ends with ChangesSuffix, and names are encoded.
func TestIdents(t *testing.T) {
	cl, sn := ChangelogIdent("src", "a/b", "t"), SnapshotIdent("src", "a/b", "t")
	if len(cl) != 3 || cl[0] != sn[0] || cl[1] != sn[1] || cl[1] != "a%2Fb" {
		t.Errorf("changelog %v, snapshot %v: want one encoded namespace", cl, sn)
	}
	if cl[2] != sn[2]+ChangesSuffix {
		t.Errorf("changelog %q, snapshot %q", cl[2], sn[2])
	}
}
