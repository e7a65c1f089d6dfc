package chaos

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// invalidatedSlot streams a source into a folder lake, stops cdclake,
// changes rows (changes the lake must never pretend to have), and writes
// WAL until PostgreSQL invalidates the slot (max_slot_wal_keep_size).
func invalidatedSlot(t *testing.T, db string) (src *source, lake string, env []string) {
	t.Helper()
	src = startSource(t, db, map[string]string{
		"max_slot_wal_keep_size": "1MB", "wal_keep_size": "0", "min_wal_size": "32MB", "max_wal_size": "32MB",
	})
	wl := &Workload{URL: src.admin, Tables: []string{"items"}, InitialRows: 2000}
	if err := wl.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.publish(t, "items")
	lake = filepath.Join(t.TempDir(), "lake")
	env = childEnv(t, nil, "")
	if code, out := runOnce(t, db, env, 2*time.Minute, "ingest", "--source", src.url, "--lake", lake, "--catch-up"); code != 0 {
		t.Fatalf("first catch-up exited %d: %s", code, lastError(out))
	}
	// while cdclake is stopped: changes, then WAL past the slot's limit
	src.pg.Exec(t, db,
		"DELETE FROM items WHERE id <= 100",
		"UPDATE items SET ver = ver + 1, pad = 'changed while lost' WHERE id BETWEEN 101 AND 200",
		"INSERT INTO items SELECT g, 1, 'new while lost' FROM generate_series(5001, 5100) g",
		"CREATE TABLE filler (x text)")
	deadline := time.Now().Add(90 * time.Second)
	for {
		src.pg.Exec(t, db, "INSERT INTO filler SELECT repeat(md5(g::text), 64) FROM generate_series(1, 2000) g",
			"SELECT pg_switch_wal()", "CHECKPOINT")
		if _, st, err := src.slot("cdclake_" + db); err != nil {
			t.Fatal(err)
		} else if st == "lost" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not invalidated after 90 s of WAL")
		}
	}
	return src, lake, env
}

// TestChaosSlotInvalidated checks that a slot PostgreSQL invalidated while
// cdclake was stopped is reported at start, the same way at every restart
// a service manager makes, without touching the lake; and that following
// the way out the error names brings the lake back to the source's state.
func TestChaosSlotInvalidated(t *testing.T) {
	src, lake, env := invalidatedSlot(t, "lost")
	args := []string{"ingest", "--source", src.url, "--lake", lake, "--catch-up"}
	cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
	before, err := cat.Source(context.Background(), "lost")
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for i := range 3 { // a service manager restarting it
		code, out := runOnce(t, "lost", env, time.Minute, args...)
		msg := lastError(out)
		if code != 1 || !strings.Contains(msg, `replication slot "cdclake_lost" was invalidated (wal_status lost`) {
			t.Fatalf("start %d with a lost slot: exit %d, %q; want exit 1 naming the invalidated slot", i+1, code, msg)
		}
		if strings.Contains(out, "panic") {
			t.Fatalf("start %d panicked:\n%s", i+1, tail(out, 3000))
		}
		if first == "" {
			first = msg
		} else if msg != first {
			t.Errorf("start %d said %q, the first %q", i+1, msg, first)
		}
	}
	after, err := cat.Source(context.Background(), "lost")
	if err != nil {
		t.Fatal(err)
	}
	if after.LSN != before.LSN {
		t.Errorf("watermark moved from %X to %X although the slot is lost", before.LSN, after.LSN)
	}
	t.Logf("error at every start: %s", first)
	wayOut(t, src, lake, env, args, first)
}

// TestChaosSlotMissing drops the slot while cdclake is stopped and rows
// change meanwhile (an operator cleaning up, a failover to a replica
// without slots), then follows the way out the error names. The rows
// deleted meanwhile must not survive in the lake.
func TestChaosSlotMissing(t *testing.T) {
	src, lake, env := invalidatedSlot(t, "gone")
	args := []string{"ingest", "--source", src.url, "--lake", lake, "--catch-up"}
	src.pg.Exec(t, "gone", "SELECT pg_drop_replication_slot('cdclake_gone')")
	code, out := runOnce(t, "gone", env, time.Minute, args...)
	msg := lastError(out)
	if code != 1 || !strings.Contains(msg, `replication slot "cdclake_gone" is missing`) {
		t.Fatalf("start without the slot: exit %d, %q; want exit 1 naming the missing slot", code, msg)
	}
	t.Logf("error: %s", msg)
	wayOut(t, src, lake, env, args, msg)
}

// wayOut does what an error about a lost or missing slot advises, then
// checks the lake against the source, and again after a change.
func wayOut(t *testing.T, src *source, lake string, env, args []string, msg string) {
	t.Helper()
	slot := "cdclake_" + src.db
	switch {
	case strings.Contains(msg, "--resnapshot"):
		if code, out := runOnce(t, src.db, env, 2*time.Minute, append(args, "--resnapshot")...); code != 0 {
			t.Fatalf("ingest --resnapshot, as the error advises, exited %d: %s", code, lastError(out))
		}
	case strings.Contains(msg, "drop the slot and re-snapshot"):
		src.pg.Exec(t, src.db, "SELECT pg_drop_replication_slot('"+slot+"')")
		if code, out := runOnce(t, src.db, env, 2*time.Minute, "snapshot", "--source", src.url, "--lake", lake, "--table", "public.items"); code != 0 {
			t.Fatalf("cdclake snapshot, as the error advises, exited %d: %s", code, lastError(out))
		}
		if code, out := runOnce(t, src.db, env, 2*time.Minute, args...); code != 0 {
			t.Fatalf("BUG: after dropping the slot and re-snapshotting the table as the error advises, ingest still refuses (exit %d): %s", code, lastError(out))
		}
	case strings.Contains(msg, "remove the source from the catalog to start over"):
		// there is no command for it: remove the records as an operator would
		db := catalogDB(t, filepath.Join(lake, "catalog.db"))
		for _, q := range []string{"DELETE FROM cdclake_sources WHERE name = ?", "DELETE FROM cdclake_snapshots WHERE source = ?"} {
			if _, err := db.Exec(q, src.db); err != nil {
				t.Fatal(err)
			}
		}
		if code, out := runOnce(t, src.db, env, 2*time.Minute, args...); code != 0 {
			t.Fatalf("starting over, as the error advises, exited %d: %s", code, lastError(out))
		}
	default:
		t.Fatalf("the error names no way out: %s", msg)
	}
	cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
	check := func(when string) {
		t.Helper()
		rep, err := CheckState(context.Background(), cat, src.conn(t), src.db, []string{"items"})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(); err != nil {
			t.Errorf("BUG: %s, the lake is not the source's state (the rows deleted while the slot was lost survive): %v", when, err)
		}
	}
	check("after the way out the error advises")
	src.pg.Exec(t, src.db, "UPDATE items SET ver = ver + 1 WHERE id = 300")
	if code, out := runOnce(t, src.db, env, 2*time.Minute, args...); code != 0 {
		t.Fatalf("streaming after the way out exited %d: %s", code, lastError(out))
	}
	check("streaming after the way out")
}
