package compact

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lakeformat"
)

// The test tables: t has an int key and a TOASTed text column that most
// updates leave alone; u has a composite text/int key.
var ddl = []string{
	"CREATE TABLE t (id int PRIMARY KEY, big text, val text, qty int, price numeric(12,2))",
	"ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL",
	"CREATE TABLE u (region text, n int, note text, PRIMARY KEY (region, n))",
}

const (
	tCols = "id, big, val, qty, price::float8"
	uCols = "region, n, note"
)

func openCatalog(t *testing.T, warehouse string, props map[string]string) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Open(context.Background(), catalog.Options{
		URL: filepath.Join(t.TempDir(), "catalog.db"), Warehouse: warehouse, Props: props})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

func catchUp(t *testing.T, cat *catalog.Catalog, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ingest.Run(ctx, cat, ingest.Options{Source: url, CatchUp: true}); err != nil {
		t.Fatalf("ingest catch-up: %v", err)
	}
}

// workload runs random transactions on t and u.
type workload struct {
	rng   *rand.Rand
	next  int
	live  []int // ids of t
	ulive []string
}

func newWorkload(seed int64) *workload {
	return &workload{rng: rand.New(rand.NewSource(seed)), next: 1}
}

func (w *workload) big() string {
	// > 4 kB, stored out of line (STORAGE EXTERNAL: no compression)
	b := make([]byte, 2500)
	w.rng.Read(b)
	return hex.EncodeToString(b)
}

func (w *workload) pick() (int, int) {
	i := w.rng.Intn(len(w.live))
	return i, w.live[i]
}

// txn returns the statements of one random transaction.
func (w *workload) txn() []string {
	var stmts []string
	for range 1 + w.rng.Intn(4) {
		op := w.rng.Intn(10)
		if len(w.live) < 50 {
			op = 0
		}
		switch {
		case op < 3: // insert
			id := w.next
			w.next++
			w.live = append(w.live, id)
			stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, '%s', 'v%d', %d, %d.%02d)", id, w.big(), id, w.rng.Intn(100), w.rng.Intn(1000), w.rng.Intn(100)))
		case op < 6: // update leaving big alone (TOAST unchanged)
			_, id := w.pick()
			stmts = append(stmts, fmt.Sprintf("UPDATE t SET val = 'u%d', qty = qty + 1 WHERE id = %d", w.rng.Intn(1000), id))
		case op < 7: // update big
			_, id := w.pick()
			stmts = append(stmts, fmt.Sprintf("UPDATE t SET big = '%s', price = NULL WHERE id = %d", w.big(), id))
		case op < 8: // key change, big untouched
			i, id := w.pick()
			nid := w.next
			w.next++
			w.live[i] = nid
			stmts = append(stmts, fmt.Sprintf("UPDATE t SET id = %d, val = 'moved' WHERE id = %d", nid, id))
		default: // delete
			i, id := w.pick()
			w.live = slices.Delete(w.live, i, i+1)
			stmts = append(stmts, fmt.Sprintf("DELETE FROM t WHERE id = %d", id))
		}
	}
	switch w.rng.Intn(4) {
	case 0:
		r := fmt.Sprintf("r%d", w.rng.Intn(5))
		stmts = append(stmts, fmt.Sprintf("INSERT INTO u VALUES ('%s', %d, 'x') ON CONFLICT (region, n) DO UPDATE SET note = 'y'", r, w.rng.Intn(20)))
	case 1:
		w.next++
		stmts = append(stmts, fmt.Sprintf("UPDATE u SET n = n + %d WHERE region = 'r%d' AND n < 1000", 1000*w.next, w.rng.Intn(5)))
	case 2:
		stmts = append(stmts, fmt.Sprintf("DELETE FROM u WHERE region = 'r%d' AND n %% 3 = 0", w.rng.Intn(5)))
	}
	return stmts
}

func (w *workload) run(t *testing.T, url string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for range n {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range w.txn() {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%.200s: %v", s, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// sourceRows returns a table's rows in PostgreSQL, one string per row.
func sourceRows(t *testing.T, url, tbl, cols string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT "+cols+" FROM "+tbl)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			switch v := v.(type) {
			case nil:
				parts = append(parts, "NULL")
			case float64:
				parts = append(parts, strconv.FormatFloat(v, 'f', 2, 64))
			default:
				parts = append(parts, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// recordRows2 renders the named columns of a record like sourceRows.
func lakeRows(t *testing.T, rec arrow.RecordBatch, cols []string) []string {
	t.Helper()
	var out []string
	for i := 0; i < int(rec.NumRows()); i++ {
		var parts []string
		for _, c := range cols {
			idx := rec.Schema().FieldIndices(c)
			if len(idx) == 0 {
				t.Fatalf("column %s missing in %v", c, rec.Schema())
			}
			a := rec.Column(idx[0])
			if a.IsNull(i) {
				parts = append(parts, "NULL")
				continue
			}
			switch a := a.(type) {
			case *array.Decimal128:
				dt := a.DataType().(*arrow.Decimal128Type)
				parts = append(parts, strconv.FormatFloat(a.Value(i).ToFloat64(dt.Scale), 'f', 2, 64))
			default:
				parts = append(parts, a.ValueStr(i))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	slices.Sort(out)
	return out
}

var (
	tLakeCols = []string{"id", "big", "val", "qty", "price"}
	uLakeCols = []string{"region", "n", "note"}
)

// snapshotRows reads a snapshot table (at snapshot id when not 0).
func snapshotRows(t *testing.T, cat *catalog.Catalog, source, name string, cols []string, opts ...table.ScanOption) []string {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(source, "public", name))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := readAll(ctx, tbl.Scan(opts...))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	return lakeRows(t, rec, cols)
}

func compareRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	short := func(s string) string {
		if len(s) > 80 {
			return fmt.Sprintf("%s...(%d bytes)", s[:80], len(s))
		}
		return s
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := 0; i < max(len(got), len(want)) && bad < 5; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s row %d:\n got %s\nwant %s", what, i, short(g), short(w))
			bad++
		}
	}
}

func compactAll(t *testing.T, cat *catalog.Catalog, o Options) []Result {
	t.Helper()
	res, err := New(cat, o).RunOnce(context.Background())
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	return res
}

func walLSN(t *testing.T, url string) uint64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var lsn pglogrepl.LSN
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return uint64(lsn)
}

// TestCompactMatchesSource runs a random workload (TOAST, key changes,
// deletes, a TRUNCATE), compacts, and compares the snapshot tables with
// the source row for row; then travels back in time.
func TestCompactMatchesSource(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", ddl...)
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	reg := prometheus.NewRegistry()
	o := Options{FileSize: 64 << 10, Metrics: NewMetrics(reg)} // small files: several per table
	catchUp(t, cat, url)

	w := newWorkload(1)
	w.run(t, url, 150)
	catchUp(t, cat, url)
	compactAll(t, cat, o)
	compareRows(t, "t", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
	compareRows(t, "u", snapshotRows(t, cat, "shop", "u", uLakeCols), sourceRows(t, url, "u", uCols))
	state1 := sourceRows(t, url, "t", tCols)
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent("shop", "public", "t"))
	if err != nil {
		t.Fatal(err)
	}
	w1, snap1 := tableLSN(tbl), currentID(tbl)
	if n := len(tbl.Metadata().Snapshots()); n != 1 {
		t.Errorf("first compaction made %d snapshots, want 1", n)
	}
	if files, _ := tbl.Scan().PlanFiles(ctx); len(files) < 2 {
		t.Errorf("snapshot table t has %d files, want several (FileSize 64 KiB)", len(files))
	}
	if ops := readChangelogOps(t, cat, "t"); !strings.Contains(ops, "U") || !strings.Contains(ops, "d") {
		t.Errorf("changelog ops %q: the workload should update with unchanged TOAST and delete", ops)
	}

	// more changes; remember the state in the middle
	w.run(t, url, 60)
	mid, midState := walLSN(t, url), sourceRows(t, url, "t", tCols)
	w.run(t, url, 60)
	catchUp(t, cat, url)
	compactAll(t, cat, o)
	compareRows(t, "t after more changes", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))

	t.Run("time travel", func(t *testing.T) {
		compareRows(t, "t at the first snapshot", snapshotRows(t, cat, "shop", "t", tLakeCols, table.WithSnapshotID(snap1)), state1)
		tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent("shop", "public", "t"))
		if err != nil {
			t.Fatal(err)
		}
		opts, w, err := ScanAt(tbl, mid)
		if err != nil || w != w1 {
			t.Fatalf("ScanAt(%d) = watermark %d, %v; want the first compaction's %d", mid, w, err, w1)
		}
		compareRows(t, "t scanned at the mid LSN", snapshotRows(t, cat, "shop", "t", tLakeCols, opts...), state1)
		rec, err := StateAt(ctx, cat, TableRef{"shop", "public", "t"}, mid)
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		compareRows(t, "StateAt(mid)", lakeRows(t, rec, tLakeCols), midState)
		if _, _, err := SnapshotAt(tbl, w1-1); !errors.Is(err, ErrNoSnapshot) {
			t.Errorf("SnapshotAt before the first compaction: %v, want ErrNoSnapshot", err)
		}
	})

	t.Run("truncate", func(t *testing.T) {
		before := countChangelogOp(t, cat, "t", lakeformat.OpTruncate)
		pg.Exec(t, "shop", "TRUNCATE t", "INSERT INTO t VALUES (100000, 'after', 'truncate', 1, 1.5)")
		w.live = []int{100000}
		w.run(t, url, 20)
		catchUp(t, cat, url)
		// the compaction below must apply this TRUNCATE's marker
		if n := countChangelogOp(t, cat, "t", lakeformat.OpTruncate); n != before+1 {
			t.Fatalf("changelog of t holds %d truncate rows after one TRUNCATE, had %d before (ops %q)", n, before, readChangelogOps(t, cat, "t"))
		}
		compactAll(t, cat, o)
		compareRows(t, "t after truncate", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
	})

	if got := counterValue(o.Metrics.Runs.WithLabelValues("ok")); got < 2 {
		t.Errorf("runs_total{result=ok} = %v, want >= 2", got)
	}
	if got := counterValue(o.Metrics.Rows.WithLabelValues("changes")); got == 0 {
		t.Error("rows_total{kind=changes} = 0")
	}
}

// countChangelogOp returns how many rows of a changelog have _cdc_op op.
func countChangelogOp(t *testing.T, cat *catalog.Catalog, name, op string) int {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent("shop", "public", name))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := readAll(ctx, tbl.Scan(table.WithSelectedFields(lakeformat.ColOp)))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	n := 0
	ops := rec.Column(0).(*array.String)
	for i := 0; i < ops.Len(); i++ {
		if ops.Value(i) == op {
			n++
		}
	}
	return n
}

// readChangelogOps returns the distinct _cdc_op values of a changelog,
// with a "U" for updates that did not send every column.
func readChangelogOps(t *testing.T, cat *catalog.Catalog, name string) string {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent("shop", "public", name))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := readAll(ctx, tbl.Scan(table.WithSelectedFields(lakeformat.ColOp, lakeformat.ColUnchanged)))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	seen := map[string]bool{}
	ops, unch := rec.Column(0).(*array.String), rec.Column(1)
	for i := 0; i < ops.Len(); i++ {
		seen[ops.Value(i)] = true
		if ops.Value(i) == "u" && unch.IsValid(i) {
			seen["U"] = true
		}
	}
	var out []string
	for op := range seen {
		out = append(out, op)
	}
	slices.Sort(out)
	return strings.Join(out, "")
}

// TestCompactWhileIngesting compacts (with changelog housekeeping) while
// a streaming ingest commits every 100 ms and the workload runs; at the
// end it catches up, compacts and compares.
func TestCompactWhileIngesting(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", ddl...)
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	catchUp(t, cat, url)

	ctx, cancel := context.WithCancel(context.Background())
	ingestDone := make(chan error, 1)
	go func() {
		ingestDone <- ingest.Run(ctx, cat, ingest.Options{Source: url, FlushAge: 100 * time.Millisecond})
	}()
	o := Options{FileSize: 128 << 10, OpenHourMergeFiles: 4, ChangelogMaxSnapshots: 10,
		ChangelogRetention: time.Second, OrphanInterval: -1}
	// two compactors, as when cdclake compact runs next to cdclake run
	var wg sync.WaitGroup
	var mu sync.Mutex
	var passes int
	var compactErr error
	stop := make(chan struct{})
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := New(cat, o)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.RunOnce(context.Background())
				mu.Lock()
				passes++
				if err != nil && compactErr == nil {
					compactErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
				time.Sleep(time.Duration(100+50*i) * time.Millisecond)
			}
		}()
	}
	w := newWorkload(2)
	for range 12 {
		w.run(t, url, 20)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	cancel()
	if err := <-ingestDone; err != nil {
		t.Fatalf("streaming ingest: %v", err)
	}
	if compactErr != nil {
		t.Fatalf("compaction while ingesting: %v", compactErr)
	}
	if passes < 3 {
		t.Errorf("only %d compaction passes ran during ingestion", passes)
	}
	catchUp(t, cat, url)
	res := compactAll(t, cat, o)
	compareRows(t, "t", snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
	compareRows(t, "u", snapshotRows(t, cat, "shop", "u", uLakeCols), sourceRows(t, url, "u", uCols))

	// the changelog kept its watermark and every change exactly once
	src, err := cat.Source(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent("shop", "public", "t"))
	if err != nil {
		t.Fatal(err)
	}
	if lsn := tableLSN(cl); lsn == 0 || lsn > src.LSN {
		t.Errorf("changelog cdclake.source-lsn = %d, source watermark %d", lsn, src.LSN)
	}
	rec, err := readAll(context.Background(), cl.Scan(table.WithSelectedFields(lakeformat.ColLSN, lakeformat.ColSeq)))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	seen := map[[2]int64]bool{}
	lsns, seqs := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Int64)
	for i := 0; i < lsns.Len(); i++ {
		k := [2]int64{lsns.Value(i), seqs.Value(i)}
		if seen[k] {
			t.Fatalf("change %v twice in the changelog", k)
		}
		seen[k] = true
	}
	var merged, expired int
	for _, r := range res {
		merged += r.MergedFiles
		expired += r.ExpiredSnapshots
	}
	if n := len(cl.Metadata().Snapshots()); n > o.ChangelogMaxSnapshots+5 {
		t.Errorf("changelog keeps %d snapshots, want about %d", n, o.ChangelogMaxSnapshots)
	}
	t.Logf("%d passes during ingestion; %d changelog rows", passes, lsns.Len())
}

// TestIncremental checks that a small change rewrites only the file whose
// key range holds it.
func TestIncremental(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE v (id int PRIMARY KEY, note text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	catchUp(t, cat, url)
	pg.Exec(t, "shop", "INSERT INTO v SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g")
	catchUp(t, cat, url)
	o := Options{FileSize: 64 << 10}
	compactAll(t, cat, o)
	ctx := context.Background()
	files := func() map[string]int64 {
		tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent("shop", "public", "v"))
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := tbl.Scan().PlanFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, task := range tasks {
			out[task.File.FilePath()] = task.File.Count()
		}
		return out
	}
	before := files()
	if len(before) < 5 {
		t.Fatalf("%d files, want several", len(before))
	}
	// two keys of one file in the middle (ids near a file boundary would
	// rightly touch two files)
	lo := fileStarts(t, cat, "v")[len(before)/2]
	pg.Exec(t, "shop", fmt.Sprintf("UPDATE v SET note = 'changed' WHERE id = %d", lo+1), fmt.Sprintf("DELETE FROM v WHERE id = %d", lo+2))
	catchUp(t, cat, url)
	res := compactAll(t, cat, o)
	after := files()
	var gone, added []string
	for p := range before {
		if _, ok := after[p]; !ok {
			gone = append(gone, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			added = append(added, p)
		}
	}
	if len(gone) != 1 || len(added) != 1 {
		t.Errorf("files replaced: %d removed, %d added; want 1 and 1 (of %d)", len(gone), len(added), len(before))
	}
	if r := res[0]; r.RewrittenRows > before[gone[0]] {
		t.Errorf("rewrote %d rows, the file held %d", r.RewrittenRows, before[gone[0]])
	}
	// and new keys past the end go to the last file only
	pg.Exec(t, "shop", "INSERT INTO v SELECT g, 'new' FROM generate_series(20001, 20010) g")
	catchUp(t, cat, url)
	compactAll(t, cat, o)
	if n := changedFiles(before, files()); n > 3 {
		t.Errorf("%d files changed in all, want at most 3", n)
	}
	compareRows(t, "v", snapshotRows(t, cat, "shop", "v", []string{"id", "note"}), sourceRows(t, url, "v", "id, note"))
}

// fileStarts returns the lowest id of each file of a snapshot table keyed
// by an int column id, in order.
func fileStarts(t *testing.T, cat *catalog.Catalog, name string) []int32 {
	t.Helper()
	tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.SnapshotIdent("shop", "public", name))
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := tbl.Schema().FindFieldByName("id")
	var out []int32
	for _, task := range tasks {
		b := task.File.LowerBoundValues()[f.ID]
		if len(b) != 4 {
			t.Fatalf("file %s has no 4-byte lower bound of id: %x", task.File.FilePath(), b)
		}
		out = append(out, int32(binary.LittleEndian.Uint32(b)))
	}
	slices.Sort(out)
	return out
}

func changedFiles(a, b map[string]int64) int {
	n := 0
	for p := range a {
		if _, ok := b[p]; !ok {
			n++
		}
	}
	return n
}

// TestCompactS3 compacts lakes on S3 servers, with orphan cleanup of
// every file not referenced (age 0) that must leave both tables whole.
func TestCompactS3(t *testing.T) {
	pg := pgtest.Start(t)
	for i, srv := range s3test.All(t) {
		t.Run(srv.Name, func(t *testing.T) {
			db := fmt.Sprintf("s3shop%d", i)
			url := pg.CreateDB(t, db)
			pg.Exec(t, db, ddl...)
			srv.Env(t)
			srv.CreateBucket(t, "lake")
			cat := openCatalog(t, "s3://lake/wh", map[string]string{"s3.endpoint": srv.Endpoint, "s3.region": srv.Region})
			catchUp(t, cat, url)
			w := newWorkload(3)
			w.run(t, url, 40)
			catchUp(t, cat, url)
			o := Options{FileSize: 128 << 10, OrphanAge: time.Nanosecond}
			compactAll(t, cat, o)
			w.run(t, url, 20)
			catchUp(t, cat, url)
			compactAll(t, cat, o)
			// an orphan in the snapshot table's folder; the changelog's
			// folder shares its name as a prefix and must be left alone
			ctx := context.Background()
			sn, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(db, "public", "t"))
			if err != nil {
				t.Fatal(err)
			}
			fs, err := sn.FS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			orphan := sn.Location() + "/data/orphan.parquet"
			if err := fs.(iceio.WriteFileIO).WriteFile(orphan, []byte("x")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			orphans := 0
			for _, r := range compactAll(t, cat, o) { // orphan cleanup with nothing in flight
				orphans += r.OrphanFiles
			}
			if _, err := fs.Open(orphan); err == nil || orphans == 0 {
				t.Errorf("orphan file not deleted (%d orphans deleted, open: %v)", orphans, err)
			}
			compareRows(t, "t", snapshotRows(t, cat, db, "t", tLakeCols), sourceRows(t, url, "t", tCols))
			compareRows(t, "u", snapshotRows(t, cat, db, "u", uLakeCols), sourceRows(t, url, "u", uCols))
			for _, id := range []table.Identifier{lakeformat.ChangelogIdent(db, "public", "t"), lakeformat.SnapshotIdent(db, "public", "t")} {
				tbl, err := cat.Iceberg().LoadTable(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := readAll(ctx, tbl.Scan()); err != nil {
					t.Errorf("read %v after orphan cleanup: %v", id, err)
				}
			}
		})
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
