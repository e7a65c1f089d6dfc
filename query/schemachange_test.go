package query

import (
	"context"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// TestSchemaChangesAfterCompaction changes a table's schema after it was
// compacted (rename, int to bigint with a value above 2^31, wider
// numeric, varchar(n) to text, a rename whose old name is reused, two
// columns swapping names), streams
// more changes, compacts again, and compares the whole table with the
// source after each step through the fresh view, the __changes view
// (latest change per key), the compacted table read by DuckDB and by an
// Iceberg scan.
func TestSchemaChangesAfterCompaction(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "ddl")
	pg.Exec(t, "ddl",
		`CREATE TABLE r (id int PRIMARY KEY, title text, qty int, price numeric(10,2), code varchar(5))`,
		`INSERT INTO r SELECT g, 't' || g, g, g * 1.25, 'c' || g FROM generate_series(1, 40) g`)
	s := shoptest.Attach(t, pg, "ddl", loc.URL(), nil) // initial copy
	pg.Exec(t, "ddl", `UPDATE r SET qty = qty + 100 WHERE id % 4 = 0`,
		`INSERT INTO r SELECT g, 't' || g, g, g * 1.25, 'c' || g FROM generate_series(41, 50) g`)
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	compactAll(t, s)

	const catchUp = "catch up" // in steps: a separate ingest run
	steps := []struct {
		name string
		sql  []string
		cols string // the table's columns afterwards
	}{
		{"rename", []string{`ALTER TABLE r RENAME COLUMN title TO name`,
			`UPDATE r SET name = 'renamed ' || id WHERE id % 3 = 0`,
			`INSERT INTO r SELECT g, 'n' || g, g, g * 1.25, 'c' || g FROM generate_series(51, 55) g`},
			"id, name, qty, price, code"},
		{"int to bigint", []string{`ALTER TABLE r ALTER COLUMN qty TYPE bigint`,
			`INSERT INTO r VALUES (56, 'big', 5000000007, 1, 'c56')`,
			`UPDATE r SET qty = 5000000008 WHERE id = 2`},
			"id, name, qty, price, code"},
		{"wider numeric", []string{`ALTER TABLE r ALTER COLUMN price TYPE numeric(14,2)`,
			`UPDATE r SET price = 123456789012.34 WHERE id = 3`},
			"id, name, qty, price, code"},
		{"varchar to text", []string{`ALTER TABLE r ALTER COLUMN code TYPE text`,
			`UPDATE r SET code = repeat('long code ', 3) WHERE id = 4`},
			"id, name, qty, price, code"},
		{"old name reused", []string{`ALTER TABLE r RENAME COLUMN name TO label`, catchUp,
			`ALTER TABLE r ADD COLUMN name text`,
			`UPDATE r SET name = 'new ' || id WHERE id % 5 = 0`},
			"id, label, qty, price, code, name"},
		{"names swapped", []string{`ALTER TABLE r RENAME COLUMN label TO tmp`, catchUp,
			`ALTER TABLE r RENAME COLUMN code TO label`, catchUp,
			`ALTER TABLE r RENAME COLUMN tmp TO code`,
			`UPDATE r SET code = 'swapped ' || id WHERE id % 6 = 0`},
			"id, code, qty, price, label, name"},
	}
	for _, st := range steps {
		// ingest tells a rename from a new column by the table's previous
		// Relation message in the same replication session: a change
		// before the DDL makes each catch-up see both
		pg.Exec(t, "ddl", `UPDATE r SET qty = qty WHERE id = 1`)
		for _, q := range st.sql {
			if q == catchUp {
				pg.Exec(t, "ddl", `UPDATE r SET qty = qty WHERE id = 1`)
				s.CatchUp(t)
				pg.Exec(t, "ddl", `UPDATE r SET qty = qty WHERE id = 1`)
				continue
			}
			pg.Exec(t, "ddl", q)
		}
		s.CatchUp(t)
		checkLake(t, e, s, st.name+", before compaction", st.cols, false)
		compactAll(t, s)
		checkLake(t, e, s, st.name+", compacted", st.cols, true)
		pg.Exec(t, "ddl", `UPDATE r SET qty = qty + 1 WHERE id % 7 = 0`) // a tail after the compaction
		s.CatchUp(t)
		checkLake(t, e, s, st.name+", compacted plus changes", st.cols, false)
	}

	// A change Iceberg cannot promote (a new scale; PostgreSQL rewrites
	// the table): ingest gives new values a column version price__v2, and
	// compaction follows without failing. PostgreSQL rewrote the table, so
	// ingest reloads it (docs/types.md) and price__v2 gets every row; it is
	// compared at least where the source's rows changed since.
	pg.Exec(t, "ddl", `UPDATE r SET qty = qty WHERE id = 1`, `ALTER TABLE r ALTER COLUMN price TYPE numeric(16,3)`,
		`UPDATE r SET price = price + 0.001 WHERE id % 2 = 0`)
	s.CatchUp(t)
	compactAll(t, s)
	const others = "id, code, qty, label, name"
	checkLake(t, e, s, "new scale, compacted", others, true)
	want := shoptest.PGRows(t, s.URL, "SELECT id, price FROM r WHERE id % 2 = 0 ORDER BY id")
	res, err := e.Query(context.Background(), "SELECT id, price__v2 FROM public.r WHERE id % 2 = 0 ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	schemaDiffRows(t, "new scale: price__v2 of the rows changed since", resultRows(res), want)
	res.Release()
	tbl, err := s.Cat.Iceberg().LoadTable(context.Background(), lakeformat.SnapshotIdent("ddl", "public", "r"))
	if err != nil {
		t.Fatal(err)
	}
	all := others + ", price, price__v2"
	res, err = e.Query(context.Background(), "SELECT "+all+" FROM public.r ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	schemaDiffRows(t, "new scale: Iceberg scan of the compacted table against the view", schemaIcebergRows(t, tbl, all), resultRows(res))
	res.Release()
	if v := tbl.Properties()["cdclake.column-names"]; v != `{"price":"price__v2"}` {
		t.Errorf("snapshot table's cdclake.column-names = %q, want the changelog's", v)
	}
}

// checkLake compares table r (columns cols, id first) in the lake with
// the source. compacted: the snapshot table holds every change.
func checkLake(t *testing.T, e *Engine, s *shoptest.Shop, step, cols string, compacted bool) {
	t.Helper()
	want := shoptest.PGRows(t, s.URL, "SELECT "+cols+" FROM r ORDER BY id")
	lake := func(what, q string) {
		t.Helper()
		res, err := e.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %s: %s: %v", step, what, q, err)
		}
		got := resultRows(res)
		res.Release()
		schemaDiffRows(t, step+": "+what, got, want)
	}
	lake("fresh view", "SELECT "+cols+" FROM public.r ORDER BY id")
	lake("__changes, latest change per key", "SELECT "+cols+` FROM (SELECT *, row_number() OVER
		(PARTITION BY id ORDER BY _cdc_lsn DESC, _cdc_seq DESC) AS rn FROM public.r__changes) WHERE rn = 1 AND _cdc_op NOT IN ('d', 't') ORDER BY id`)
	if !compacted {
		return
	}
	tbl, err := s.Cat.Iceberg().LoadTable(context.Background(), lakeformat.SnapshotIdent("ddl", "public", "r"))
	if err != nil {
		t.Fatal(err)
	}
	schemaDiffRows(t, step+": Iceberg scan of the compacted table", schemaIcebergRows(t, tbl, cols), want)
}

// icebergRows reads a table with iceberg-go, rows as text, sorted by the
// first column (an integer).
func schemaIcebergRows(t *testing.T, tbl *table.Table, cols string) [][]string {
	t.Helper()
	names := splitCols(cols)
	at, err := tbl.Scan(table.WithSelectedFields(names...)).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	var out [][]string
	tr := array.NewTableReader(at, 1<<20)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, len(names))
			for c, n := range names {
				idx := rec.Schema().FieldIndices(n)
				if len(idx) == 0 {
					t.Fatalf("column %s missing in %s", n, rec.Schema())
				}
				v, ok := Text(rec.Column(idx[0]), i)
				if !ok {
					v = "NULL"
				}
				row[c] = v
			}
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i][0])
		b, _ := strconv.Atoi(out[j][0])
		return a < b
	})
	return out
}

func splitCols(cols string) []string {
	out := strings.Split(cols, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

func schemaDiffRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Errorf("%s: %d rows, source %d", what, len(got), len(want))
	bad := 0
	for i := 0; i < max(len(got), len(want)) && bad < 5; i++ {
		var g, w []string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s row %d:\n lake   %v\n source %v", what, i, g, w)
			bad++
		}
	}
}
