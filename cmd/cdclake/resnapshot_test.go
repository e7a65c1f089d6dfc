package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestResnapshotAfterMove streams a source into a lake, then moves the
// source to a new server whose WAL positions are far below the old one's
// (a dump and restore into a fresh cluster, with rows that differ), and
// follows what cdclake says: plain ingest must refuse with one line
// naming --resnapshot (with and without a slot of that name on the new
// server), ingest --resnapshot must reload, and the changes made on the
// new server afterwards must reach the lake. Both the fresh view and the
// compacted snapshot table must equal the new server's table, row for
// row, and compaction's watermark must move on.
func TestResnapshotAfterMove(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lakeDir := filepath.Join(t.TempDir(), "lake")
	const ddl = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(12,2) NOT NULL)"
	const items = "SELECT id, name, price FROM items ORDER BY id"

	a := pgtest.Start(t)
	urlA := a.CreateDB(t, "shop")
	a.Exec(t, "shop", ddl, "INSERT INTO items SELECT g, 'a' || g, g * 1.5 FROM generate_series(1, 200) g")
	// the old server's WAL positions lie well past where a new one starts
	for range 4 {
		a.Exec(t, "shop", "INSERT INTO items SELECT g, 'w', 0 FROM generate_series(100001, 101000) g",
			"DELETE FROM items WHERE id > 100000", "SELECT pg_switch_wal()")
	}
	ingestA := []string{"ingest", "--source", urlA, "--lake", lakeDir, "--catch-up"}
	if err := run(ctx, ingestA); err != nil {
		t.Fatal(err)
	}
	a.Exec(t, "shop", "UPDATE items SET name = 'a-changed' WHERE id % 7 = 0", "DELETE FROM items WHERE id > 180",
		"INSERT INTO items SELECT g, 'a-late' || g, 3 FROM generate_series(500, 520) g")
	if err := run(ctx, ingestA); err != nil {
		t.Fatal(err)
	}
	compactCmd := func() {
		t.Helper()
		var out bytes.Buffer
		if err := (&compactCommand{out: &out}).Run(ctx, []string{"--lake", lakeDir}); err != nil {
			t.Fatalf("compact: %v\n%s", err, out.String())
		}
	}
	compactCmd()
	checkLake(t, ctx, lakeDir, a, "on the old server")
	oldW := snapshotWatermark(t, ctx, lakeDir)

	// the move: a new server with the table as restored, not as streamed
	b := pgtest.Start(t)
	urlB := b.CreateDB(t, "shop")
	b.Exec(t, "shop", ddl, "INSERT INTO items SELECT g, 'b' || g, g * 2.25 FROM generate_series(50, 300) g")
	ingestB := []string{"ingest", "--source", urlB, "--lake", lakeDir, "--catch-up"}

	// plain ingest refuses, without a slot and with one of that name
	err := run(ctx, ingestB)
	if err == nil || !strings.Contains(err.Error(), "--resnapshot") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("plain ingest of the moved source without a slot: %v; want one line naming --resnapshot", err)
	}
	t.Logf("without a slot: %v", err)
	b.Exec(t, "shop", "SELECT pg_create_logical_replication_slot('cdclake_shop', 'pgoutput')")
	err = run(ctx, ingestB)
	if err == nil || !strings.Contains(err.Error(), "--resnapshot") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("plain ingest of the moved source with a slot of that name: %v; want one line naming --resnapshot", err)
	}
	t.Logf("with a slot: %v", err)

	if err := run(ctx, append(ingestB, "--resnapshot")); err != nil {
		t.Fatalf("ingest --resnapshot: %v", err)
	}
	checkLake(t, ctx, lakeDir, b, "after the resnapshot")
	// changes on the new server, streamed
	b.Exec(t, "shop", "UPDATE items SET name = 'b-changed', price = price + 1 WHERE id % 5 = 0",
		"DELETE FROM items WHERE id BETWEEN 60 AND 80",
		"INSERT INTO items SELECT g, 'b-new' || g, 7.5 FROM generate_series(1, 20) g")
	if err := run(ctx, ingestB); err != nil {
		t.Fatal(err)
	}
	b.Exec(t, "shop", "UPDATE items SET price = 9.99 WHERE id = 1", "DELETE FROM items WHERE id = 2")
	if err := run(ctx, ingestB); err != nil {
		t.Fatal(err)
	}
	checkLake(t, ctx, lakeDir, b, "after changes on the new server")
	compactCmd()
	checkLake(t, ctx, lakeDir, b, "compacted")
	if w := snapshotWatermark(t, ctx, lakeDir); w <= oldW {
		t.Errorf("compaction's watermark %d did not move past %d from before the move", w, oldW)
	}
	checkSnapshotTable(t, ctx, lakeDir, b)

	// --resnapshot left in a service's arguments reloads nothing more
	b.Exec(t, "shop", "UPDATE items SET name = 'again' WHERE id = 3")
	if err := run(ctx, append(ingestB, "--resnapshot")); err != nil {
		t.Fatalf("ingest --resnapshot again: %v", err)
	}
	checkLake(t, ctx, lakeDir, b, "after a second --resnapshot")
}

// checkLake compares the fresh view of items with the source's table.
func checkLake(t *testing.T, ctx context.Context, lakeDir string, pg *pgtest.Cluster, when string) {
	t.Helper()
	const q = "SELECT id, name, price FROM public.items ORDER BY id"
	rows, err := pgRowsText(pg, "shop", q)
	if err != nil {
		t.Fatal(err)
	}
	want := "id,name,price\n"
	for _, r := range rows {
		want += strings.Join(r, ",") + "\n"
	}
	got, _, err := runQuery(t, "--lake", lakeDir, "--format", "csv", q)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s: the lake's view differs from the source:\n%s", when, diffLines(got, want))
	}
}

// itemsSnapshot loads items' snapshot table from the lake in lakeDir.
func itemsSnapshot(t *testing.T, ctx context.Context, lakeDir string) *table.Table {
	t.Helper()
	lf := lakeFlags{lake: lakeDir}
	cat, _, err := lf.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent("shop", "public", "items"))
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// snapshotWatermark returns the cdclake.source-lsn of items' snapshot table.
func snapshotWatermark(t *testing.T, ctx context.Context, lakeDir string) uint64 {
	t.Helper()
	tbl := itemsSnapshot(t, ctx, lakeDir)
	w, err := strconv.ParseUint(tbl.Properties()[lakeformat.PropSourceLSN], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkSnapshotTable compares the rows of items' snapshot table itself
// with the source's table.
func checkSnapshotTable(t *testing.T, ctx context.Context, lakeDir string, pg *pgtest.Cluster) {
	t.Helper()
	rows, err := pgRowsText(pg, "shop", "SELECT id, name, price FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, r := range rows {
		want[strings.Join(r, ",")] = true
	}
	tbl := itemsSnapshot(t, ctx, lakeDir)
	at, err := tbl.Scan(table.WithSelectedFields("id", "name", "price")).ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	got := map[string]bool{}
	n := 0
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			var vals []string
			for c := 0; c < 3; c++ {
				col := rec.Column(c)
				if d, ok := col.(*array.Decimal128); ok {
					// the scale's zeros, as PostgreSQL prints numeric(12,2)
					vals = append(vals, d.Value(i).ToString(d.DataType().(*arrow.Decimal128Type).Scale))
					continue
				}
				vals = append(vals, col.ValueStr(i))
			}
			got[strings.Join(vals, ",")] = true
			n++
		}
	}
	var missing, extra []string
	for r := range want {
		if !got[r] {
			missing = append(missing, r)
		}
	}
	for r := range got {
		if !want[r] {
			extra = append(extra, r)
		}
	}
	if n != len(rows) || len(missing) > 0 || len(extra) > 0 {
		t.Errorf("snapshot table: %d rows, source %d; missing %d (e.g. %v), extra %d (e.g. %v)",
			n, len(rows), len(missing), first(missing), len(extra), first(extra))
	}
}

func first(s []string) []string { return s[:min(len(s), 5)] }

// diffLines lists the lines only one of got and want has.
func diffLines(got, want string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	var b strings.Builder
	n := 0
	for _, l := range strings.Split(got, "\n") {
		if !w[l] && n < 10 {
			fmt.Fprintf(&b, "  lake only:   %s\n", l)
			n++
		}
	}
	n = 0
	for _, l := range strings.Split(want, "\n") {
		if !g[l] && n < 10 {
			fmt.Fprintf(&b, "  source only: %s\n", l)
			n++
		}
	}
	return b.String()
}
