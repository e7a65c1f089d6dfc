package compact

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestCompactDuringReload compacts while a reload of t is in progress and
// the stream commits changes past the reload's position, then lets the
// reload commit and compacts again: the snapshot table must end up equal
// to the source. The lake first misses some updates and deletes (made
// while the publication only published inserts), so only the reload's
// rows can repair it.
//
// The reload runs as a role whose reads of t pass a row-level security
// policy that waits for an advisory lock the test holds: the reload's
// copy is stuck after it recorded itself running in the catalog and
// before it committed, for as long as the test wants.
func TestCompactDuringReload(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", ddl...)
	pg.Exec(t, "shop",
		"CREATE ROLE reloader LOGIN REPLICATION PASSWORD 'reload-pw'",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reloader",
		`CREATE FUNCTION reload_gate() RETURNS boolean LANGUAGE plpgsql AS
			$$BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN true; END$$`,
		"ALTER TABLE t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY gate ON t FOR SELECT TO reloader USING (reload_gate())")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	ctx := context.Background()
	o := Options{FileSize: 64 << 10}

	catchUp(t, cat, url)
	w := newWorkload(4)
	w.run(t, url, 60)
	catchUp(t, cat, url)
	compactAll(t, cat, o)
	compareRows(t, "t before", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
	src, err := cat.Source(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	pub := pgx.Identifier{src.Publication}.Sanitize()

	// the lake misses changes the stream never saw
	diverge := func(tag string) {
		pg.Exec(t, "shop", "ALTER PUBLICATION "+pub+" SET (publish = 'insert')",
			fmt.Sprintf("UPDATE t SET val = '%s' WHERE id %% 3 = 0", tag),
			"DELETE FROM t WHERE id % 5 = 0",
			"ALTER PUBLICATION "+pub+" SET (publish = 'insert, update, delete, truncate')")
		w.live = slices.DeleteFunc(w.live, func(id int) bool { return id%5 == 0 })
	}
	diverge("unseen")

	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- ingest.Run(streamCtx, cat, ingest.Options{Source: url, FlushAge: 100 * time.Millisecond})
	}()
	// streaming before the reload starts (at its start ingest reloads any
	// table whose snapshot is recorded running)
	w.run(t, url, 1)
	waitWatermark(t, cat, walLSN(t, url))

	// the reload, stuck in its copy of t
	openGate := pg.Gate(t, "shop", 4242)
	reloadDone := make(chan error, 1)
	go func() {
		reloadDone <- ingest.Reload(ctx, cat, ingest.Options{Source: pg.UserURL("reloader", "reload-pw", "shop")}, []string{"public.t"})
	}()
	var cp2 uint64
	for deadline := time.Now().Add(time.Minute); cp2 == 0; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-reloadDone:
			t.Fatalf("the reload ended before the gate opened: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload did not record itself running within a minute")
		}
		// a reload records itself first at a lower bound of its position,
		// before its slot exists, and then, sized, at the slot's position
		if rec := copyOf(t, cat, "t"); rec.State == catalog.SnapshotRunning && rec.TotalBytes > 0 {
			cp2 = rec.LSN
		}
	}

	// the stream commits changes past the reload's position; compaction
	// must keep the watermark at cp2-1, where the reload's rows will land
	w.run(t, url, 40)
	waitWatermark(t, cat, walLSN(t, url))
	if l := changelogLSN(t, cat, "t"); l <= cp2 {
		t.Fatalf("the changelog of t is at %d, not past the reload's position %d", l, cp2)
	}
	for _, r := range compactAll(t, cat, o) {
		switch r.Table.Name {
		case "t":
			if r.Plan.Hold != cp2 || r.LSN != cp2-1 {
				t.Errorf("compaction of t during the reload: hold %d, watermark %d; want hold %d, watermark %d", r.Plan.Hold, r.LSN, cp2, cp2-1)
			}
		case "u":
			if r.Plan.Hold != 0 {
				t.Errorf("compaction of u held at %d, want no hold (only t is reloaded)", r.Plan.Hold)
			}
		}
	}
	if got := snapshotLSN(t, cat, "t"); got != cp2-1 {
		t.Errorf("snapshot table t watermark %d, want %d", got, cp2-1)
	}
	if got, want := snapshotLSN(t, cat, "u"), changelogLSN(t, cat, "u"); got != want {
		t.Errorf("snapshot table u watermark %d, want its changelog's %d", got, want)
	}
	if s := strings.Join(snapshotRows(t, cat, "shop", "t", tLakeCols), "\n"); strings.Contains(s, "|unseen|") {
		t.Fatal("the lake has the unseen updates before the reload committed")
	}
	select {
	case err := <-reloadDone:
		t.Fatalf("the reload ended while the gate was closed: %v", err)
	default:
	}

	// the reload commits below the watermark's cap, then more changes
	openGate()
	select {
	case err := <-reloadDone:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the reload did not finish within 2 minutes of the gate opening")
	}
	if rec := copyOf(t, cat, "t"); rec.State != catalog.SnapshotDone || rec.LSN != cp2 {
		t.Fatalf("catalog record of t after the reload: %+v, want done at %d", rec, cp2)
	}
	w.run(t, url, 30)
	waitWatermark(t, cat, walLSN(t, url))
	stopStream()
	if err := <-streamDone; err != nil {
		t.Fatalf("streaming ingest: %v", err)
	}
	for _, r := range compactAll(t, cat, o) {
		if r.Table.Name == "t" && (r.Plan.From != cp2-1 || r.Plan.Hold != 0 || r.FilesRemoved == 0) {
			t.Errorf("compaction of t after the reload: from %d, hold %d, %d files removed; want from %d, no hold, the old files removed",
				r.Plan.From, r.Plan.Hold, r.FilesRemoved, cp2-1)
		}
	}
	compareRows(t, "t after the reload", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
	compareRows(t, "u after the reload", snapshotRows(t, cat, "shop", "u", uLakeCols), sourceRows(t, url, "u", uCols))

	// a reload of a table no change reaches afterwards: its rows land
	// above the changelog's own watermark and are applied all the same
	t.Run("idle table", func(t *testing.T) {
		diverge("unseen again")
		if err := ingest.Reload(ctx, cat, ingest.Options{Source: url}, []string{"public.t"}); err != nil {
			t.Fatalf("reload: %v", err)
		}
		cp3 := copyOf(t, cat, "t").LSN
		if l := changelogLSN(t, cat, "t"); l >= cp3 {
			t.Fatalf("the changelog of t is at %d, not below the reload's position %d", l, cp3)
		}
		compactAll(t, cat, o)
		if got := snapshotLSN(t, cat, "t"); got != cp3 {
			t.Errorf("snapshot table t watermark %d, want the reload's position %d", got, cp3)
		}
		compareRows(t, "t after an idle reload", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
		res := compactAll(t, cat, o) // nothing new: nothing to do
		for _, r := range res {
			if r.Table.Name == "t" && (r.LSN != 0 || r.Skipped != "") {
				t.Errorf("second compaction after an idle reload: watermark %d, skipped %q; want a no-op", r.LSN, r.Skipped)
			}
		}
	})
}

// copyOf returns the catalog's record of the latest copy of table name.
func copyOf(t *testing.T, cat *catalog.Catalog, name string) catalog.TableSnapshot {
	t.Helper()
	snaps, err := cat.Snapshots(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.Schema == "public" && s.Table == name {
			return s
		}
	}
	return catalog.TableSnapshot{}
}

// waitWatermark waits until the source's watermark reaches lsn.
func waitWatermark(t *testing.T, cat *catalog.Catalog, lsn uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		src, err := cat.Source(context.Background(), "shop")
		if err != nil {
			t.Fatal(err)
		}
		if src.LSN >= lsn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source watermark is at %d a minute later, want %d", src.LSN, lsn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func changelogLSN(t *testing.T, cat *catalog.Catalog, name string) uint64 {
	t.Helper()
	tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent("shop", "public", name))
	if err != nil {
		t.Fatal(err)
	}
	return tableLSN(tbl)
}

func snapshotLSN(t *testing.T, cat *catalog.Catalog, name string) uint64 {
	t.Helper()
	tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.SnapshotIdent("shop", "public", name))
	if err != nil {
		t.Fatal(err)
	}
	return tableLSN(tbl)
}
