package compact

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// housekeepNow runs a compaction pass that deletes every unreferenced
// file older than age, and checks that it looked at table.
func housekeepNow(t *testing.T, cat *catalog.Catalog, table string, age time.Duration) {
	t.Helper()
	time.Sleep(10 * time.Millisecond)
	for _, r := range compactAll(t, cat, Options{OrphanAge: age, OrphanInterval: -1}) {
		if r.Table.Name == table {
			return
		}
	}
	t.Fatalf("compaction did not look at %s", table)
}

// changelogIntact checks that every file the changelog of table
// references exists, and returns its rows.
func changelogIntact(t *testing.T, cat *catalog.Catalog, table string) int64 {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent("shop", "public", table))
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, task := range tasks {
		if _, err := os.Stat(strings.TrimPrefix(task.File.FilePath(), "file://")); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the %d files the changelog of %s references are gone", missing, len(tasks), table)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("read the changelog of %s: %v", table, err)
	}
	defer at.Release()
	return at.NumRows()
}

// TestOrphansSpareCopyInProgress plays a reload that runs longer than
// the orphan age: it started three hours ago (ingest.Options.Now), its
// first chunk's files are two hours old (their times are set back), and
// it waits in its second chunk (a row-level security policy on the
// reload's role waits for an advisory lock the test holds, for the rows
// past the first chunk), while the stream goes on recording its
// watermark. Orphan cleanup with an orphan age of an hour runs then: the
// reload's files are not referenced by any snapshot until its commit,
// but must survive; after the commit every row is readable.
func TestOrphansSpareCopyInProgress(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE big (id int PRIMARY KEY, pad text)", "CREATE TABLE small (id int PRIMARY KEY)",
		"INSERT INTO big SELECT g, repeat('x', 400) || g FROM generate_series(1, 50000) g")
	var first, rows int
	if err := pg.QueryRow("shop", "SELECT max(id) FILTER (WHERE ctid < '(2048,0)'::tid), count(*) FROM big", &first, &rows); err != nil {
		t.Fatal(err)
	}
	if first >= rows {
		t.Fatalf("big fits in one chunk (%d rows, %d in the first 2048 pages)", rows, first)
	}
	pg.Exec(t, "shop",
		"CREATE ROLE reloader LOGIN REPLICATION PASSWORD 'reload-pw'",
		"GRANT SELECT ON big TO reloader",
		fmt.Sprintf(`CREATE FUNCTION reload_gate(id int) RETURNS boolean LANGUAGE plpgsql AS
			$$BEGIN IF id > %d THEN PERFORM pg_advisory_xact_lock_shared(4245); END IF; RETURN true; END$$`, first),
		"ALTER TABLE big ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY gate ON big FOR SELECT TO reloader USING (reload_gate(id))")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	catchUp(t, cat, url) // the initial copy, as the owner: not gated
	ctx := context.Background()
	// the stream goes on beside the reload and records its watermark
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- ingest.Run(streamCtx, cat, ingest.Options{Source: url, FlushAge: 50 * time.Millisecond})
	}()
	// streaming before the reload starts (at its start ingest reloads any
	// table whose copy is recorded running)
	pg.Exec(t, "shop", "INSERT INTO small VALUES (0)")
	waitWatermark(t, cat, walLSN(t, url))

	openGate := pg.Gate(t, "shop", 4245)
	reloadDone := make(chan error, 1)
	go func() {
		reloadDone <- ingest.Reload(ctx, cat, ingest.Options{Source: pg.UserURL("reloader", "reload-pw", "shop"),
			ProgressInterval: time.Millisecond, Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }},
			[]string{"public.big"})
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-reloadDone:
			t.Fatalf("the reload ended before the gate opened: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload did not write its first chunk within a minute")
		}
		if rec := copyOf(t, cat, "big"); rec.State == catalog.SnapshotRunning && rec.Rows > 0 {
			break // the first chunk's files are written
		}
	}
	// the files written so far were written two hours ago
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent("shop", "public", "big"))
	if err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-2 * time.Hour)
	err = filepath.WalkDir(strings.TrimPrefix(tbl.Location(), "file://"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(path, then, then)
	})
	if err != nil {
		t.Fatal(err)
	}
	// the watermark is recorded after the reload's start
	pg.Exec(t, "shop", "INSERT INTO small VALUES (1)")
	waitWatermark(t, cat, walLSN(t, url))
	if src, err := cat.Source(ctx, "shop"); err != nil || !src.UpdatedAt.After(copyOf(t, cat, "big").StartedAt) {
		t.Fatalf("the watermark was not recorded since the reload started (%v)", err)
	}

	housekeepNow(t, cat, "big", time.Hour)
	openGate()
	select {
	case err := <-reloadDone:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the reload did not end within a minute of the gate opening")
	}
	stopStream()
	if err := <-streamDone; err != nil {
		t.Fatalf("stream: %v", err)
	}
	// the initial copy, the reload's truncate marker and its copy
	if got, want := changelogIntact(t, cat, "big"), int64(2*rows+1); got != want {
		t.Errorf("the changelog of big has %d rows, want %d", got, want)
	}
}

// TestOrphansSpareStreamedTransaction runs orphan cleanup with an orphan
// age of a millisecond while ingest has staged a large transaction that
// PostgreSQL streamed (written in several parts as it is replayed) and
// not committed it yet (the AfterUpload hook waits): the staged files
// must survive; after the commit every row is readable.
func TestOrphansSpareStreamedTransaction(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"logical_decoding_work_mem": "64kB"}})
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE big (id int PRIMARY KEY, pad text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	catchUp(t, cat, url)
	const rows = 20000
	pg.Exec(t, "shop", fmt.Sprintf("INSERT INTO big SELECT g, repeat('x', 400) || g FROM generate_series(1, %d) g", rows))

	staged, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	o := ingest.Options{Source: url, CatchUp: true, MemoryBudget: 4 << 20, Hooks: ingest.Hooks{AfterUpload: func(key string) error {
		if key == "public.big" {
			once.Do(func() { close(staged); <-release })
		}
		return nil
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ingest.Run(ctx, cat, o) }()
	select {
	case <-staged:
	case err := <-done:
		t.Fatalf("ingest ended before it committed big: %v", err)
	case <-ctx.Done():
		t.Fatal("ingest did not stage the transaction")
	}

	housekeepNow(t, cat, "big", time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if got := changelogIntact(t, cat, "big"); got != rows {
		t.Errorf("the changelog of big has %d rows, want %d", got, rows)
	}
}
