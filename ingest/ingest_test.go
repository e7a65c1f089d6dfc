package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lakeformat"
)

// change is one changelog row as the tests compare it.
type change struct {
	Op   string
	LSN  int64
	Seq  int64
	XID  int64
	ID   int64
	Val  string // "" when null
	Null bool
}

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

// readChanges scans a changelog table and returns its rows ordered by
// (lsn, seq).
func readChanges(t *testing.T, cat *catalog.Catalog, source, schema, name string) []change {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(source, schema, name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var out []change
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Fatalf("column %s missing in %v", name, rec.Schema())
			}
			return rec.Column(idx[0])
		}
		ops, lsns, seqs, xids := col(lakeformat.ColOp).(*array.String), col(lakeformat.ColLSN).(*array.Int64), col(lakeformat.ColSeq).(*array.Int64), col(lakeformat.ColXID).(*array.Int64)
		ids, vals := col("id").(*array.Int32), col("val").(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			c := change{Op: ops.Value(i), LSN: lsns.Value(i), Seq: seqs.Value(i), XID: xids.Value(i), Null: vals.IsNull(i)}
			if ids.IsValid(i) {
				c.ID = int64(ids.Value(i))
			}
			if !c.Null {
				c.Val = vals.Value(i)
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].LSN != out[j].LSN {
			return out[i].LSN < out[j].LSN
		}
		return out[i].Seq < out[j].Seq
	})
	return out
}

// workload runs transactions against tables a and b and returns the
// expected changelog of each, with the xid of each transaction.
type expected struct {
	a, b []change // LSN unknown (0): checked for order and equality per txn
}

func setupTables(t *testing.T, pg *pgtest.Cluster, db string) {
	pg.Exec(t, db,
		"CREATE TABLE a (id int PRIMARY KEY, val text)",
		"CREATE TABLE b (id int PRIMARY KEY, val text)")
}

// runTxns executes each transaction's statements and returns its xid.
func runTxns(t *testing.T, url string, txns [][]string) []int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var xids []int64
	for _, stmts := range txns {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var xid int64
		if err := tx.QueryRow(ctx, "SELECT txid_current() % 4294967296").Scan(&xid); err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		xids = append(xids, xid)
	}
	return xids
}

var workload = [][]string{
	{"INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, 'three')", "INSERT INTO b VALUES (10, 'ten'), (20, 'twenty')"},
	{"UPDATE a SET val = 'uno' WHERE id = 1", "DELETE FROM b WHERE id = 10"},
	{"UPDATE a SET id = 4 WHERE id = 2", "INSERT INTO b VALUES (30, NULL)"},
	{"DELETE FROM a WHERE id = 3"},
}

// want lists, per table, (txn index, change) in order.
func wantChanges(xids []int64) (a, b []change) {
	a = []change{
		{Op: "c", XID: xids[0], Seq: 0, ID: 1, Val: "one"},
		{Op: "c", XID: xids[0], Seq: 1, ID: 2, Val: "two"},
		{Op: "c", XID: xids[0], Seq: 2, ID: 3, Val: "three"},
		{Op: "u", XID: xids[1], Seq: 0, ID: 1, Val: "uno"},
		{Op: "d", XID: xids[2], Seq: 0, ID: 2, Null: true}, // old key of a key change
		{Op: "u", XID: xids[2], Seq: 1, ID: 4, Val: "two"},
		{Op: "d", XID: xids[3], Seq: 0, ID: 3, Null: true},
	}
	b = []change{
		{Op: "c", XID: xids[0], Seq: 3, ID: 10, Val: "ten"},
		{Op: "c", XID: xids[0], Seq: 4, ID: 20, Val: "twenty"},
		{Op: "d", XID: xids[1], Seq: 1, ID: 10, Null: true},
		{Op: "c", XID: xids[2], Seq: 2, ID: 30, Null: true},
	}
	return a, b
}

// checkChanges compares a changelog with the expected one: same rows in
// the same order, one LSN per transaction, LSNs rising with transactions.
func checkChanges(t *testing.T, table string, got, want []change) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes, want %d:\n got %+v\nwant %+v", table, len(got), len(want), got, want)
	}
	lsnOf := map[int64]int64{}
	for i := range got {
		g, w := got[i], want[i]
		w.LSN = g.LSN
		if g != w {
			t.Errorf("%s change %d = %+v, want %+v", table, i, g, w)
		}
		if l, ok := lsnOf[g.XID]; ok && l != g.LSN {
			t.Errorf("%s: xid %d has two LSNs %d and %d", table, g.XID, l, g.LSN)
		}
		lsnOf[g.XID] = g.LSN
		if i > 0 && g.XID != got[i-1].XID && g.LSN <= got[i-1].LSN {
			t.Errorf("%s: LSN %d of change %d does not rise past %d", table, g.LSN, i, got[i-1].LSN)
		}
	}
}

func catchUp(t *testing.T, cat *catalog.Catalog, o Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.CatchUp = true
	return Run(ctx, cat, o)
}

func TestStreamToLake(t *testing.T) {
	pg := pgtest.Start(t)
	type target struct {
		name      string
		warehouse func(t *testing.T) (string, map[string]string)
	}
	targets := []target{{"file", func(t *testing.T) (string, map[string]string) {
		return "file://" + t.TempDir(), nil
	}}}
	for _, srv := range s3test.All(t) {
		targets = append(targets, target{srv.Name, func(t *testing.T) (string, map[string]string) {
			srv.Env(t)
			srv.CreateBucket(t, "lake")
			return "s3://lake/warehouse", map[string]string{"s3.endpoint": srv.Endpoint, "s3.region": srv.Region}
		}})
	}
	for i, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			db := fmt.Sprintf("shop%d", i)
			url := pg.CreateDB(t, db)
			setupTables(t, pg, db)
			wh, props := tg.warehouse(t)
			cat := openCatalog(t, wh, props)
			o := Options{Source: url}
			if err := catchUp(t, cat, o); err != nil { // creates slot and publication
				t.Fatal(err)
			}
			xids := runTxns(t, url, workload)
			if err := catchUp(t, cat, o); err != nil {
				t.Fatal(err)
			}
			wa, wb := wantChanges(xids)
			checkChanges(t, "a", readChanges(t, cat, db, "public", "a"), wa)
			checkChanges(t, "b", readChanges(t, cat, db, "public", "b"), wb)
		})
	}
}

func TestCatchUpAdvancesSlot(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	setupTables(t, pg, "shop")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	runTxns(t, url, workload)
	before := currentLSN(t, url)
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var confirmed pglogrepl.LSN
	if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdclake_shop'").Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if uint64(confirmed) < before {
		t.Fatalf("slot confirmed LSN %s is before the WAL position %s at the start of catch-up", confirmed, pglogrepl.LSN(before))
	}
	src, err := cat.Source(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if src.LSN < uint64(confirmed) {
		t.Fatalf("catalog watermark %s behind the slot's confirmed LSN %s", pglogrepl.LSN(src.LSN), confirmed)
	}
}

func currentLSN(t *testing.T, url string) uint64 {
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

// TestCrashRecovery stops a flush at each dangerous point, restarts, and
// checks that the changelog holds every change exactly once. The last
// case adds a transaction PostgreSQL streams while it runs (larger than
// logical_decoding_work_mem) and stops while it is staged in partial
// batches, the first of which carries the small transactions before it.
func TestCrashRecovery(t *testing.T) {
	errCrash := errors.New("injected crash")
	cases := []struct {
		name  string
		hooks func() Hooks
		large int // rows of a streamed transaction after the workload
	}{
		{"after upload, before commit", func() Hooks {
			return Hooks{AfterUpload: func(string) error { return errCrash }}
		}, 0},
		{"between table commits", func() Hooks {
			n := 0
			return Hooks{AfterTableCommit: func(string) error {
				if n++; n == 1 {
					return errCrash
				}
				return nil
			}}
		}, 0},
		{"after commit, before ack", func() Hooks {
			return Hooks{AfterWatermark: func(uint64) error { return errCrash }}
		}, 0},
		{"while staging a streamed transaction", func() Hooks {
			n := 0
			return Hooks{AfterPartial: func() error {
				if n++; n == 2 {
					return errCrash
				}
				return nil
			}}
		}, 12_000}, // about 3 MiB: three partial batches of 1 MiB
	}
	pg := streamingCluster(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := fmt.Sprintf("crash%d", i)
			url := pg.CreateDB(t, db)
			setupTables(t, pg, db)
			cat := openCatalog(t, "file://"+t.TempDir(), nil)
			// partial batches of 1 MiB; small transactions stay buffered
			o := Options{Source: url, MemoryBudget: 1 << 20, SpillDir: t.TempDir(), FlushAge: time.Hour}
			if err := catchUp(t, cat, o); err != nil {
				t.Fatal(err)
			}
			xids := runTxns(t, url, workload)
			var large []change
			if tc.large > 0 {
				x := runTxns(t, url, [][]string{{largeInsert(100, 100+tc.large-1)}})[0]
				for i := range tc.large {
					large = append(large, change{Op: "c", XID: x, Seq: int64(i), ID: int64(100 + i), Val: fmt.Sprintf("%s%d", strings.Repeat("x", 200), 100+i)})
				}
			}
			crashing := o
			crashing.Hooks = tc.hooks()
			if err := catchUp(t, cat, crashing); !errors.Is(err, errCrash) {
				t.Fatalf("run with crash hook: %v, want the injected crash", err)
			}
			// more changes while "down"
			xids = append(xids, runTxns(t, url, [][]string{{"INSERT INTO a VALUES (5, 'five')"}})...)
			if err := catchUp(t, cat, o); err != nil {
				t.Fatal(err)
			}
			wa, wb := wantChanges(xids)
			wa = append(wa, large...)
			wa = append(wa, change{Op: "c", XID: xids[4], ID: 5, Val: "five"})
			checkChanges(t, "a", readChanges(t, cat, db, "public", "a"), wa)
			checkChanges(t, "b", readChanges(t, cat, db, "public", "b"), wb)
			if tc.large > 0 {
				var streamed int64
				if err := pg.QueryRow(db, fmt.Sprintf("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'cdclake_%s'", db), &streamed); err != nil {
					t.Fatal(err)
				}
				if streamed == 0 {
					t.Fatal("PostgreSQL streamed no transaction: the test does not reach the partial batches")
				}
			}
		})
	}
}

// TestStreaming checks that a running ingest commits a change within
// seconds and stops cleanly on cancel.
func TestStreaming(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "live")
	setupTables(t, pg, "live")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 200 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cat, o) }()
	xids := runTxns(t, url, [][]string{{"INSERT INTO a VALUES (1, 'one')"}})
	deadline := time.Now().Add(30 * time.Second)
	for len(readChanges(t, cat, "live", "public", "a")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("insert not in the lake after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	xids = append(xids, runTxns(t, url, [][]string{{"INSERT INTO a VALUES (2, 'two')"}})...)
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	// whatever the cancel left behind arrives with the next start
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	checkChanges(t, "a", readChanges(t, cat, "live", "public", "a"), []change{
		{Op: "c", XID: xids[0], ID: 1, Val: "one"}, {Op: "c", XID: xids[1], ID: 2, Val: "two"}})
}
