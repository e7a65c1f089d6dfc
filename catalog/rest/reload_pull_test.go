package rest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestReloadAfterClosedPull plays a reload that runs for hours beside
// the stream and a warehouse that pulls every night through the contract
// of docs/warehouse-pull.md: each closed hour partition once, and a
// partition seen again in a higher version holds the same rows (its copy
// is kept). The warehouse applies what it pulled in (_cdc_lsn, _cdc_seq)
// order and must end up with the source's rows. The lake first misses
// updates and deletes (made while the publication published inserts
// only), so only the reload's rows repair it.
//
// The copies are stamped two hours in the past (ingest.Options.Now): the
// initial copy's rows and the reload's fall into an hour the stream has
// long passed, as for a reload that started two hours ago. The reload
// runs as a role whose reads pass a row-level security policy waiting
// for an advisory lock the test holds, so it is in progress (recorded
// running, not committed) for as long as the test wants.
func TestReloadAfterClosedPull(t *testing.T) {
	f := newLake(t)
	url := f.pg.CreateDB(t, "shop")
	f.pg.Exec(t, "shop",
		"CREATE TABLE items (id int PRIMARY KEY, v text)",
		"INSERT INTO items SELECT g, 'a' || g FROM generate_series(1, 200) g",
		"CREATE PUBLICATION cdclake_shop FOR TABLE items",
		"CREATE ROLE reloader LOGIN REPLICATION PASSWORD 'reload-pw'",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO reloader",
		`CREATE FUNCTION reload_gate() RETURNS boolean LANGUAGE plpgsql AS
			$$BEGIN PERFORM pg_advisory_xact_lock_shared(4243); RETURN true; END$$`,
		"ALTER TABLE items ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY gate ON items FOR SELECT TO reloader USING (reload_gate())")
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }

	// the initial copy, then the lake misses changes the stream never saw
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := ingest.Run(cctx, f.cat, ingest.Options{Source: url, CatchUp: true, Now: past, Logger: quiet}); err != nil {
		t.Fatalf("initial copy: %v", err)
	}
	f.pg.Exec(t, "shop", "ALTER PUBLICATION cdclake_shop SET (publish = 'insert')",
		"UPDATE items SET v = 'unseen' WHERE id % 3 = 0",
		"DELETE FROM items WHERE id % 5 = 0",
		"ALTER PUBLICATION cdclake_shop SET (publish = 'insert, update, delete, truncate')")

	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- ingest.Run(streamCtx, f.cat, ingest.Options{Source: url, FlushAge: 100 * time.Millisecond, Logger: quiet})
	}()
	f.pg.Exec(t, "shop", "INSERT INTO items SELECT g, 'b' || g FROM generate_series(201, 210) g")
	waitSource(t, f, url)

	// the reload, stuck in its copy
	openGate := f.pg.Gate(t, "shop", 4243)
	reloadDone := make(chan error, 1)
	go func() {
		reloadDone <- ingest.Reload(ctx, f.cat, ingest.Options{Source: f.pg.UserURL("reloader", "reload-pw", "shop"),
			Now: past, Logger: quiet}, []string{"public.items"})
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-reloadDone:
			t.Fatalf("the reload ended before the gate opened: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload did not record itself running within a minute")
		}
		if rec := itemsCopy(t, f.cat); rec.State == catalog.SnapshotRunning && rec.TotalBytes > 0 {
			break
		}
	}

	// the stream goes on past the copy's position
	f.pg.Exec(t, "shop", "INSERT INTO items SELECT g, 'c' || g FROM generate_series(211, 220) g",
		"UPDATE items SET v = 'streamed' WHERE id IN (1, 2, 211)", "DELETE FROM items WHERE id = 4")
	waitSource(t, f, url)

	var nextDay atomic.Bool // the source caught up a day later: every hour closed
	ts := f.server(t, Options{SourceStatus: func(ctx context.Context, s catalog.Source) (SourceStatus, error) {
		if nextDay.Load() {
			return SourceStatus{CaughtUpAt: time.Now().Add(2 * time.Hour)}, nil
		}
		return SourceStatus{}, nil
	}})
	wh := &warehouse{pulled: map[string]Manifest{}}
	wh.pull(t, ts, "night during the copy")

	openGate()
	select {
	case err := <-reloadDone:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the reload did not end within a minute of the gate opening")
	}
	f.pg.Exec(t, "shop", "UPDATE items SET v = 'late' WHERE id IN (2, 3)")
	waitSource(t, f, url)
	wh.pull(t, ts, "night after the copy")

	stopStream()
	if err := <-streamDone; err != nil {
		t.Fatalf("stream: %v", err)
	}
	nextDay.Store(true)
	wh.pull(t, ts, "a day later")

	want := map[string]string{}
	src, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	rows, err := src.Query(ctx, "SELECT id::text, v FROM items")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		want[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := wh.state()
	if !maps.Equal(got, want) {
		var diff []string
		for _, id := range slices.Sorted(maps.Keys(want)) {
			if got[id] != want[id] {
				diff = append(diff, fmt.Sprintf("%s: warehouse %q, source %q", id, got[id], want[id]))
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				diff = append(diff, fmt.Sprintf("%s: warehouse %q, not in the source", id, got[id]))
			}
		}
		t.Errorf("the warehouse has %d rows, the source %d:\n%s", len(got), len(want), strings.Join(diff, "\n"))
	}
}

// itemsCopy returns the catalog's record of the copy of shop.public.items.
func itemsCopy(t *testing.T, cat *catalog.Catalog) catalog.TableSnapshot {
	t.Helper()
	snaps, err := cat.Snapshots(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.Schema == "public" && s.Table == "items" {
			return s
		}
	}
	return catalog.TableSnapshot{}
}

// waitSource waits until the shop source's watermark reaches the WAL
// position the source database is at now.
func waitSource(t *testing.T, f *lakeFixture, url string) {
	t.Helper()
	var lsn pglogrepl.LSN
	if err := f.pg.QueryRow("shop", "SELECT pg_current_wal_lsn()", &lsn); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		src, err := f.cat.Source(context.Background(), "shop")
		if err != nil {
			t.Fatal(err)
		}
		if src.LSN >= uint64(lsn) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watermark is at %d a minute later, want %d", src.LSN, lsn)
		}
	}
}

// warehouse pulls shop.public.items as docs/warehouse-pull.md says: every
// closed partition once; a partition listed again in a higher version has
// the same rows in new files, so the rows loaded before are kept.
type warehouse struct {
	pulled map[string]Manifest // by manifest path
	rows   []warehouseRow
}

type warehouseRow struct {
	id, v    string
	op       string
	lsn, seq int64
}

func (w *warehouse) pull(t *testing.T, ts *httptest.Server, night string) {
	t.Helper()
	var ps struct{ Partitions []Partition }
	get(t, ts, "", "/v1/tables/shop/public/items/partitions?closed=true&limit=1000", http.StatusOK, &ps)
	for _, p := range ps.Partitions {
		if old, ok := w.pulled[p.Manifest]; ok {
			if p.Rows != old.Rows {
				t.Errorf("%s: partition %s, pulled closed with %d rows (version %d), has %d rows now (version %d)",
					night, p.Hour.Format(HourFormat), old.Rows, old.Version, p.Rows, p.Version)
			}
			continue
		}
		var m Manifest
		get(t, ts, "", p.Manifest, http.StatusOK, &m)
		if !m.Closed {
			continue
		}
		for _, fl := range m.Files {
			w.rows = append(w.rows, warehouseRows(t, download(t, ts, "", *fl.Download))...)
		}
		w.pulled[p.Manifest] = m
		t.Logf("%s: pulled %s, %d rows", night, p.Hour.Format(HourFormat), m.Rows)
	}
}

// state applies the rows pulled in (_cdc_lsn, _cdc_seq) order.
func (w *warehouse) state() map[string]string {
	rows := slices.Clone(w.rows)
	slices.SortStableFunc(rows, func(a, b warehouseRow) int {
		if a.lsn != b.lsn {
			return cmpInt(a.lsn, b.lsn)
		}
		return cmpInt(a.seq, b.seq)
	})
	out := map[string]string{}
	for _, r := range rows {
		switch r.op {
		case lakeformat.OpTruncate:
			clear(out)
		case lakeformat.OpDelete:
			delete(out, r.id)
		default:
			out[r.id] = r.v
		}
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// warehouseRows reads a changelog file of items.
func warehouseRows(t *testing.T, data []byte) []warehouseRow {
	t.Helper()
	at := readParquet(t, data)
	defer at.Release()
	var out []warehouseRow
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		id, v, op := col("id"), col("v"), col(lakeformat.ColOp)
		lsn, seq := col(lakeformat.ColLSN).(*array.Int64), col(lakeformat.ColSeq).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			r := warehouseRow{op: op.ValueStr(i), lsn: lsn.Value(i), seq: seq.Value(i)}
			if !id.IsNull(i) {
				r.id = id.ValueStr(i)
			}
			if !v.IsNull(i) {
				r.v = v.ValueStr(i)
			}
			out = append(out, r)
		}
	}
	return out
}
