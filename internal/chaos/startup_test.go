package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestChaosKilledBeforeSnapshotRecorded kills cdclake (SIGKILL) at two
// steps of its first start, after it created the slot and before the
// initial snapshot is under way: when it next queries the publication's
// tables, and when it looks up a table to plan the snapshot. A proxy in
// front of PostgreSQL fires the kill when the query's text passes. The
// next start must still copy the rows the table held before the slot,
// although the table never changes afterwards (a table that changes is
// copied anyway, as a table new to the lake: reference data is the case).
func TestChaosKilledBeforeSnapshotRecorded(t *testing.T) {
	steps := []struct{ name, query string }{
		{"listing the published tables", "pg_publication_tables"},
		{"planning the snapshot", "c.oid = $1::regclass"},
	}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			db := fmt.Sprintf("window%d", i)
			src := startSource(t, db, nil)
			wl := &Workload{URL: src.admin, Tables: []string{"items"}, InitialRows: 500}
			if err := wl.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			src.publish(t, "items")
			wire, err := NewWireProxy(fmt.Sprintf("127.0.0.1:%d", src.pg.Port))
			if err != nil {
				t.Fatal(err)
			}
			defer wire.Close()
			url := fmt.Sprintf("postgres://chaos:%s@%s/%s?sslmode=disable", pgPassword, wire.Addr, db)
			lake := filepath.Join(t.TempDir(), "lake")
			args := []string{"ingest", "--source", url, "--lake", lake, "--catch-up"}
			env := childEnv(t, nil, "")

			killed := make(chan struct{})
			var p *proc
			wire.When("CREATE_REPLICATION_SLOT", step.query, func() {
				p.cmd.Process.Kill()
				close(killed)
			})
			p = startProc(t, db, env, nil, args...)
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("cdclake never reached %s", step.name)
			}
			select {
			case <-killed:
			default:
				t.Fatalf("cdclake ended (exit %d) before %s: %s", p.code, step.name, lastError(p.output()))
			}
			cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
			_, srcErr := cat.Source(context.Background(), db)
			snaps, _ := cat.Snapshots(context.Background(), db)
			t.Logf("killed while %s: source recorded: %v, snapshot records: %d", step.name, srcErr == nil, len(snaps))

			if code, out := runOnce(t, db, env, 2*time.Minute, args...); code != 0 {
				t.Fatalf("restart exited %d: %s", code, lastError(out))
			}
			rep, err := CheckState(context.Background(), cat, src.conn(t), db, []string{"items"})
			if err != nil {
				t.Fatalf("BUG: a kill while %s (after the slot, before the snapshot records) loses the existing rows of a table that does not change: %v", step.name, err)
			}
			if err := rep.Err(); err != nil {
				t.Errorf("BUG: a kill while %s: %v", step.name, err)
			}
		})
	}
}
