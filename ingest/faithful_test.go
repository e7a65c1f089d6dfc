package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// scanRows returns a changelog's rows as column -> value maps (values as
// Arrow renders them for JSON), ordered by (_cdc_lsn, _cdc_seq).
func scanRows(t *testing.T, cat *catalog.Catalog, source, schema, name string) []map[string]any {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(source, schema, name))
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var out []map[string]any
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]any{}
			for c, f := range rec.Schema().Fields() {
				row[f.Name] = rec.Column(c).GetOneForMarshal(i)
			}
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		li, lj := out[i][lakeformat.ColLSN].(int64), out[j][lakeformat.ColLSN].(int64)
		if li != lj {
			return li < lj
		}
		return out[i][lakeformat.ColSeq].(int64) < out[j][lakeformat.ColSeq].(int64)
	})
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUnchangedToast(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "toast")
	pg.Exec(t, "toast",
		"CREATE TABLE docs (id int PRIMARY KEY, body text, n int)",
		"ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 5000)
	pg.Exec(t, "toast",
		"INSERT INTO docs VALUES (1, '"+big+"', 0)",
		"UPDATE docs SET n = 1 WHERE id = 1",
		"UPDATE docs SET body = 'short', n = 2 WHERE id = 1")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	rows := scanRows(t, cat, "toast", "public", "docs")
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	if rows[0]["body"] != big || rows[0][lakeformat.ColUnchanged] != nil {
		t.Errorf("insert row: body len %d, unchanged %v", len(fmt.Sprint(rows[0]["body"])), rows[0][lakeformat.ColUnchanged])
	}
	if rows[1]["body"] != nil || jsonOf(rows[1][lakeformat.ColUnchanged]) != `["body"]` || rows[1]["n"] != int32(1) {
		t.Errorf("update without body: body %v, unchanged %v, n %v; want null, [body], 1", rows[1]["body"] != nil, jsonOf(rows[1][lakeformat.ColUnchanged]), rows[1]["n"])
	}
	if rows[2]["body"] != "short" || rows[2][lakeformat.ColUnchanged] != nil {
		t.Errorf("update with body: %v %v", rows[2]["body"], rows[2][lakeformat.ColUnchanged])
	}
}

func TestTruncate(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "trunc")
	setupTables(t, pg, "trunc")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "trunc", "INSERT INTO a VALUES (1, 'x'), (2, 'y')", "INSERT INTO b VALUES (1, 'z')",
		"TRUNCATE a, b", "INSERT INTO a VALUES (3, 'w')")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range scanRows(t, cat, "trunc", "public", "a") {
		ops = append(ops, r[lakeformat.ColOp].(string))
	}
	if got := strings.Join(ops, ""); got != "cctc" {
		t.Errorf("ops of a = %q, want cctc", got)
	}
	var opsB []string
	for _, r := range scanRows(t, cat, "trunc", "public", "b") {
		opsB = append(opsB, r[lakeformat.ColOp].(string))
	}
	if got := strings.Join(opsB, ""); got != "ct" {
		t.Errorf("ops of b = %q, want ct", got)
	}
}

// TestSchemaChangesWhileStreaming alters a table under a running ingest.
func TestSchemaChangesWhileStreaming(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "ddl")
	pg.Exec(t, "ddl", "CREATE TABLE t (id int PRIMARY KEY, val int)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cat, o) }()
	steps := []string{
		"INSERT INTO t VALUES (1, 10)",
		"ALTER TABLE t ADD COLUMN extra text",
		"INSERT INTO t VALUES (2, 20, 'two')",
		"ALTER TABLE t RENAME COLUMN extra TO note",
		"INSERT INTO t VALUES (3, 30, 'three')",
		"ALTER TABLE t ALTER COLUMN val TYPE bigint",
		"INSERT INTO t VALUES (4, 40000000000, 'four')",
		"ALTER TABLE t ALTER COLUMN val TYPE text",
		"INSERT INTO t VALUES (5, 'fifty', 'five')",
		"ALTER TABLE t DROP COLUMN note",
		"INSERT INTO t VALUES (6, 'sixty')",
	}
	for _, s := range steps {
		pg.Exec(t, "ddl", s)
		time.Sleep(150 * time.Millisecond) // let some steps land in separate flushes
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	// integer to text rewrote the table, which was reloaded: a truncate
	// and every row, with the text column version filled
	var rows, reloaded []map[string]any
	for _, r := range scanRows(t, cat, "ddl", "public", "t") {
		if r[lakeformat.ColOp] == lakeformat.OpInsert {
			rows = append(rows, r)
		} else {
			reloaded = append(reloaded, r)
		}
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6: %v", len(rows), rows)
	}
	var vals []string
	for _, r := range reloaded {
		vals = append(vals, fmt.Sprint(r[lakeformat.ColOp], r["val__v2"]))
	}
	// (row 6 is in the reload when it started after that insert)
	wantReload := "t<nil> r10 r20 r30 r40000000000 rfifty"
	if got := strings.Join(vals, " "); got != wantReload && got != wantReload+" rsixty" {
		t.Errorf("reload after the type change: %s, want %s", got, wantReload)
	}
	want := []string{
		`{"id":1,"note":null,"val":10,"val__v2":null}`,
		`{"id":2,"note":"two","val":20,"val__v2":null}`,
		`{"id":3,"note":"three","val":30,"val__v2":null}`,
		`{"id":4,"note":"four","val":40000000000,"val__v2":null}`,
		`{"id":5,"note":"five","val":null,"val__v2":"fifty"}`,
		`{"id":6,"note":null,"val":null,"val__v2":"sixty"}`,
	}
	for i, r := range rows {
		got := map[string]any{}
		for _, k := range []string{"id", "note", "val", "val__v2"} {
			got[k] = r[k]
		}
		if g := jsonOf(got); g != want[i] {
			t.Errorf("row %d = %s, want %s", i, g, want[i])
		}
		if _, ok := r["extra"]; ok {
			t.Errorf("row %d still has the renamed column extra", i)
		}
	}
	tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent("ddl", "public", "t"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.Metadata().Schemas()); n < 4 {
		t.Errorf("%d schemas in the table's history, want at least 4 (add, rename, widen, new version)", n)
	}
	if f, ok := tbl.Schema().FindFieldByName("val"); !ok || f.Type.String() != "long" {
		t.Errorf("val is %v, want widened to long", f.Type)
	}
}

// TestLargeTransaction streams one 2-million-row transaction through the
// spool and reports peak heap against the memory budget.
func TestLargeTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("large transaction: skipped with -short")
	}
	pg := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"logical_decoding_work_mem": "'1MB'"}})
	url := pg.CreateDB(t, "big")
	pg.Exec(t, "big", "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12,2), at timestamptz)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	const budget = 64 << 20
	o := Options{Source: url, MemoryBudget: budget, SpillDir: t.TempDir()}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	const n = 2_000_000
	pg.Exec(t, "big", fmt.Sprintf(`INSERT INTO items SELECT g, 'item ' || g, g / 100.0, now() FROM generate_series(1, %d) g`, n))

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	start := time.Now()
	err := catchUp(t, cat, o)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent("big", "public", "items"))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := tbl.CurrentSnapshot().Summary.Properties["total-records"]
	if rows != fmt.Sprint(n) {
		t.Fatalf("lake holds %s rows, want %d", rows, n)
	}
	p := peak.Load()
	t.Logf("2M-row transaction: %.1f s, peak heap in use %d MiB (before %d MiB, budget %d MiB)",
		time.Since(start).Seconds(), p>>20, base.HeapInuse>>20, budget>>20)
	if limit := uint64(2*budget + 160<<20); p > limit {
		t.Errorf("peak heap %d MiB over %d MiB (twice the budget plus fixed overhead)", p>>20, limit>>20)
	}
}

// TestAbortedTransactions checks that streamed transactions that roll
// back, wholly or to a savepoint, leave nothing of what they undid.
func TestAbortedTransactions(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"logical_decoding_work_mem": "'64kB'"}})
	url := pg.CreateDB(t, "abort")
	pg.Exec(t, "abort", "CREATE TABLE t (id int PRIMARY KEY, tag text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, MemoryBudget: 1 << 20, SpillDir: t.TempDir()}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	err := pg.ExecErr("abort",
		"BEGIN",
		"INSERT INTO t SELECT g, 'rolled back' FROM generate_series(1, 50000) g",
		"ROLLBACK",
		"BEGIN",
		"INSERT INTO t SELECT g, 'kept' FROM generate_series(1, 20000) g",
		"SAVEPOINT s1",
		"INSERT INTO t SELECT g, 'undone' FROM generate_series(20001, 40000) g",
		"SAVEPOINT s2",
		"INSERT INTO t SELECT g, 'undone nested' FROM generate_series(40001, 50000) g",
		"ROLLBACK TO SAVEPOINT s1",
		"INSERT INTO t SELECT g, 'after' FROM generate_series(60001, 60010) g",
		"COMMIT")
	if err != nil {
		t.Fatal(err)
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	tags := map[string]int{}
	for _, r := range scanRows(t, cat, "abort", "public", "t") {
		tags[r["tag"].(string)]++
	}
	if jsonOf(tags) != `{"after":10,"kept":20000}` {
		t.Errorf("tags in the lake = %v, want kept 20000 and after 10 only", tags)
	}
}

func TestPartitionedTable(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "part")
	pg.Exec(t, "part",
		"CREATE TABLE m (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)",
		"CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "part",
		"INSERT INTO m VALUES (1, '2025-03-01', 'a')",
		"CREATE TABLE m_2026 (LIKE m INCLUDING ALL)",
		"ALTER TABLE m ATTACH PARTITION m_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
		"INSERT INTO m VALUES (2, '2026-03-01', 'b')",
		"UPDATE m SET v = 'c' WHERE id = 1")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range scanRows(t, cat, "part", "public", "m") {
		got = append(got, fmt.Sprintf("%s%v%v", r[lakeformat.ColOp], r["id"], r["v"]))
	}
	// the attached partition held a row when the run checked the
	// partitions (docs/types.md), so a reload of the whole state may follow
	if g := strings.Join(got, " "); g != "c1a c2b u1c" && g != "c1a c2b u1c t<nil><nil> r1c r2b" {
		t.Errorf("changes of m = %v, want c1a c2b u1c, maybe followed by a reload t r1c r2b", got)
	}
	for ident, err := range cat.Iceberg().ListTables(context.Background(), lakeformat.ChangelogIdent("part", "public", "")[:2]) {
		if err != nil {
			t.Fatal(err)
		}
		if name := ident[len(ident)-1]; name != "m"+lakeformat.ChangesSuffix {
			t.Errorf("table %s in the lake; changes of partitions belong to m", name)
		}
	}
}

func TestTableWithoutKey(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "nokey")
	pg.Exec(t, "nokey", "CREATE TABLE log (msg text, n int)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	err := catchUp(t, cat, o)
	if err == nil || !strings.Contains(err.Error(), "table public.log has no primary key") || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Fatalf("start with a keyless table: %v, want the replica identity error", err)
	}
	var pubs int
	if err := pg.QueryRow("nokey", "SELECT count(*) FROM pg_publication", &pubs); err != nil || pubs != 0 {
		t.Fatalf("publications after the refused start: %d (%v), want 0", pubs, err)
	}
	pg.Exec(t, "nokey", "ALTER TABLE log REPLICA IDENTITY FULL")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "nokey", "INSERT INTO log VALUES ('a', 1), ('b', 2)", "DELETE FROM log WHERE n = 2")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	rows := scanRows(t, cat, "nokey", "public", "log")
	if len(rows) != 3 || rows[2][lakeformat.ColOp] != "d" || rows[2]["msg"] != "b" || rows[2][lakeformat.ColUnchanged] != nil {
		t.Fatalf("changes = %v, want two inserts and a delete carrying the whole old row", rows)
	}
}

// TestSeveralSchemaChangesInOneBatch: changes of one table's schema that
// reach ingest in one flush (here one transaction) each commit; found by
// the randomized suite (internal/torture), where ingest failed every
// flush with "current schema id has changed" and the source stopped.
func TestSeveralSchemaChangesInOneBatch(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "ddl")
	pg.Exec(t, "ddl", "CREATE TABLE t (id int PRIMARY KEY, val int)", "INSERT INTO t VALUES (1, 10)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "ddl", `BEGIN;
		ALTER TABLE t ADD COLUMN a text; INSERT INTO t VALUES (2, 20, 'two');
		ALTER TABLE t ADD COLUMN b int; INSERT INTO t VALUES (3, 30, 'three', 3);
		ALTER TABLE t ALTER COLUMN val TYPE bigint; INSERT INTO t VALUES (4, 40000000000, 'four', 4);
		COMMIT`)
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range scanRows(t, cat, "ddl", "public", "t") {
		got[fmt.Sprint(r["id"], " ", r["val"], " ", r["a"], " ", r["b"])] = true
	}
	for _, want := range []string{"1 10 <nil> <nil>", "2 20 two <nil>", "3 30 three 3", "4 40000000000 four 4"} {
		if !got[want] {
			t.Errorf("changelog lacks row %q; has %v", want, got)
		}
	}
}

// TestRenameWhileStopped: a column renamed while cdclake was stopped is a
// rename (the old rows keep their values under the new name), not a new
// column; found by the randomized suite (internal/torture).
func TestRenameWhileStopped(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "ddl")
	pg.Exec(t, "ddl", "CREATE TABLE t (id int PRIMARY KEY, val int, note text)", "INSERT INTO t VALUES (1, 10, 'one')")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "ddl", "UPDATE t SET val = 11 WHERE id = 1")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "ddl", "ALTER TABLE t RENAME COLUMN val TO amount", "INSERT INTO t VALUES (2, 20, 'two')")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	for _, r := range scanRows(t, cat, "ddl", "public", "t") {
		if _, ok := r["val"]; ok {
			t.Fatalf("the lake kept a column val after its rename: %v", r)
		}
		if r["amount"] == nil {
			t.Errorf("row %v: amount is NULL", r)
		}
	}
}

// TestByteaToText: a bytea column changed to text gets a new column
// version; promoting binary to string left the changelog unreadable by
// iceberg-go ("invalid UTF8 bytes" in the old files' bounds), found by
// internal/torture.
func TestByteaToText(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "ddl")
	pg.Exec(t, "ddl", "CREATE TABLE t (id int PRIMARY KEY, b bytea)", `INSERT INTO t VALUES (1, '\x00ff10')`)
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "ddl", `INSERT INTO t VALUES (2, '\xfffe')`)
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "ddl", "ALTER TABLE t ALTER COLUMN b TYPE text USING encode(b, 'hex')", "INSERT INTO t VALUES (3, 'text')")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	if rows := scanRows(t, cat, "ddl", "public", "t"); len(rows) < 3 {
		t.Errorf("changelog has %d rows, want at least 3", len(rows))
	}
}

// TestReplayAfterWidening: changes replayed after a crash that came
// between a widening's schema commit and the rows' commit arrive in the
// older, narrower type; they go into the widened column, not a new column
// version (found by internal/torture: c__v2 and NULLs in c).
func TestReplayAfterWidening(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "ddl")
	pg.Exec(t, "ddl", "CREATE TABLE t (id int PRIMARY KEY, c int)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "ddl", "INSERT INTO t VALUES (1, 10)", "ALTER TABLE t ALTER COLUMN c TYPE bigint", "INSERT INTO t VALUES (2, 20000000000)")
	crash := o
	crash.Hooks.AfterUpload = func(string) error { return errors.New("crash before the rows' commit") }
	if err := catchUp(t, cat, crash); err == nil {
		t.Fatal("the crash hook did not stop the flush")
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	for _, r := range scanRows(t, cat, "ddl", "public", "t") {
		if _, ok := r["c__v2"]; ok {
			t.Fatalf("a replay after a widening made a new column version: %v", r)
		}
		if r["c"] == nil {
			t.Errorf("row %v: c is NULL", r)
		}
	}
}
