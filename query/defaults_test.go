package query

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// icebergRows reads a lake table with iceberg-go (as any Iceberg reader
// would) and returns the named columns as PostgreSQL text rows ordered by
// the first column, an integer.
func icebergRows(t *testing.T, s *shoptest.Shop, changelog bool, schema, name string, cols []string) [][]string {
	t.Helper()
	ctx := context.Background()
	ident := lakeformat.SnapshotIdent(s.DB, schema, name)
	if changelog {
		ident = lakeformat.ChangelogIdent(s.DB, schema, name)
	}
	tbl, err := s.Cat.Iceberg().LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	var out [][]string
	for tr.Next() {
		rec := tr.RecordBatch()
		idx := make([]int, len(cols))
		for i, c := range cols {
			f := rec.Schema().FieldIndices(c)
			if len(f) != 1 {
				t.Fatalf("%v has no column %s: %s", ident, c, rec.Schema())
			}
			idx[i] = f[0]
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			row := make([]string, len(cols))
			for i, c := range idx {
				v, ok := Text(rec.Column(c), r)
				if !ok {
					v = "NULL"
				}
				row[i] = v
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

// sameRows reports a difference between two row sets, a few rows of it.
func sameRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	var diffs []string
	for i := 0; i < max(len(got), len(want)) && len(diffs) < 5; i++ {
		var g, w []string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			diffs = append(diffs, "lake "+strings.Join(g, "|")+" postgres "+strings.Join(w, "|"))
		}
	}
	t.Errorf("%s: %d rows, postgres %d; first differences:\n%s", what, len(got), len(want), strings.Join(diffs, "\n"))
}

// checkTable compares a whole table (every row, every column) with the
// source: through the fresh view, and, when compacted, through an Iceberg
// scan of the snapshot table.
func checkTable(t *testing.T, e *Engine, s *shoptest.Shop, name string, cols []string, compacted bool) {
	t.Helper()
	checkColumns(t, e, s, name, cols, cols, compacted)
}

// checkColumns is checkTable with the lake's names of the columns
// (lakeCols) where they differ from the source's.
func checkColumns(t *testing.T, e *Engine, s *shoptest.Shop, name string, cols, lakeCols []string, compacted bool) {
	t.Helper()
	order := " FROM public." + name + " ORDER BY " + cols[0]
	want := shoptest.PGRows(t, s.URL, "SELECT "+strings.Join(cols, ", ")+order)
	q := "SELECT " + strings.Join(lakeCols, ", ") + order
	res, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("lake: %s: %v", q, err)
	}
	got := resultRows(res)
	res.Release()
	sameRows(t, "fresh view public."+name, got, want)
	if compacted {
		sameRows(t, "snapshot table (iceberg-go) of "+name, icebergRows(t, s, false, "public", name, lakeCols), want)
	}
}

// TestAddColumnDefault: ALTER TABLE ADD COLUMN ... DEFAULT gives every
// existing row the default without writing them (a "fast default"), so
// no change carries it; the lake must read it for every row that predates
// the column, and keep the values of rows written since (NULL included).
func TestAddColumnDefault(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", `CREATE TABLE p (id int PRIMARY KEY, name text)`,
		`INSERT INTO p SELECT g, 'n' || g FROM generate_series(1, 1000) g`)
	s := shoptest.Attach(t, pg, "shop", loc.URL(), nil) // initial copy
	e := openEngine(t, s.Cat, Options{Lake: loc})
	compactAll(t, s) // a snapshot table of rows without the columns
	cols := []string{"id", "name", "active", "qty", "tag"}

	pg.Exec(t, "shop",
		`UPDATE p SET name = 'before' WHERE id <= 20`, // changes after the watermark, without the columns
		// in one transaction: a row inserted before the ALTER gets the defaults too
		`BEGIN; INSERT INTO p VALUES (1001, 'same tx');
		 ALTER TABLE p ADD COLUMN active boolean NOT NULL DEFAULT true, ADD COLUMN qty int DEFAULT 7,
		   ADD COLUMN tag text DEFAULT 'it''s', ADD COLUMN note text,
		   ADD COLUMN ts timestamptz DEFAULT now(), ADD COLUMN price numeric(8,2) DEFAULT 1.5;
		 INSERT INTO p VALUES (1002, 'after', false, NULL, NULL, 'x', NULL, 2); COMMIT`,
		`UPDATE p SET active = false WHERE id <= 10`,
		`UPDATE p SET qty = NULL, tag = NULL WHERE id BETWEEN 11 AND 15`,
		`UPDATE p SET name = 'later' WHERE id BETWEEN 16 AND 30`)
	s.CatchUp(t)
	cols = append(cols, "note", "ts", "price")
	checkTable(t, e, s, "p", cols, false)

	tbl, err := s.Cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent("shop", "public", "p"))
	if err != nil {
		t.Fatal(err)
	}
	if d := tbl.Properties()[lakeformat.PropColumnDefaults]; !strings.Contains(d, `"active"`) || !strings.Contains(d, `"qty"`) || strings.Contains(d, `"note"`) {
		t.Errorf("%s = %s, want the defaults of active, qty, tag, ts and price", lakeformat.PropColumnDefaults, d)
	}

	compactAll(t, s)
	checkTable(t, e, s, "p", cols, true)

	// later changes of old rows, compacted again
	pg.Exec(t, "shop", `UPDATE p SET name = 'again' WHERE id BETWEEN 25 AND 40`, `DELETE FROM p WHERE id = 999`)
	s.CatchUp(t)
	checkTable(t, e, s, "p", cols, false)
	compactAll(t, s)
	checkTable(t, e, s, "p", cols, true)
}

// TestTableRewriteReload: a column added with a volatile default and type
// changes that PostgreSQL carries out by rewriting the table give the
// existing rows values no change carries; ingest reloads the table while
// it streams, so the lake converges without a manual step.
func TestTableRewriteReload(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", `CREATE TABLE r (id int PRIMARY KEY, name text, qty int, ts timestamp)`,
		`INSERT INTO r SELECT g, 'n' || g, g, timestamp '2026-01-01 00:00:00.6' + g * interval '1.3 seconds' FROM generate_series(1, 500) g`)
	s := shoptest.Attach(t, pg, "shop", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	compactAll(t, s)

	steps := []struct {
		ddl      string
		cols     []string
		lakeCols []string
	}{
		{`ALTER TABLE r ADD COLUMN added timestamptz NOT NULL DEFAULT clock_timestamp()`,
			[]string{"id", "name", "qty", "ts", "added"}, nil},
		{`ALTER TABLE r ALTER COLUMN ts TYPE timestamp(0)`, // rounds every value
			[]string{"id", "name", "qty", "ts", "added"}, nil},
		{`ALTER TABLE r ALTER COLUMN name TYPE char(12)`, // pads every value
			[]string{"id", "name", "qty", "ts", "added"}, nil},
		{`ALTER TABLE r ALTER COLUMN qty TYPE text USING (qty * 2)::text`, // a new column version in the lake
			[]string{"id", "name", "qty", "ts", "added"}, []string{"id", "name", "qty__v2", "ts", "added"}},
	}
	for i, st := range steps {
		pg.Exec(t, "shop", st.ddl, fmt.Sprintf(`UPDATE r SET id = id WHERE id <= %d`, 3+i))
		s.CatchUp(t)
		lakeCols := st.lakeCols
		if lakeCols == nil {
			lakeCols = st.cols
		}
		checkColumns(t, e, s, "r", st.cols, lakeCols, false)
		compactAll(t, s)
		checkColumns(t, e, s, "r", st.cols, lakeCols, true)
		if t.Failed() {
			t.Fatalf("after %s", st.ddl)
		}
	}
}

// TestDefaultThenWiden: a column added with a default and then widened
// without a reload. PostgreSQL widens the rows' missing value with the
// column (a real's -1016.1204 becomes the double -1016.1204223632812); the
// recorded default must widen the same way, not be read again in the
// wider type.
func TestDefaultThenWiden(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", `CREATE TABLE p (id int PRIMARY KEY, name text)`,
		`INSERT INTO p SELECT g, 'n' || g FROM generate_series(1, 50) g`)
	s := shoptest.Attach(t, pg, "shop", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	cols := []string{"id", "name", "f", "i"}
	pg.Exec(t, "shop",
		`ALTER TABLE p ADD COLUMN f real DEFAULT -1016.1204, ADD COLUMN i int DEFAULT 2147483647`,
		`UPDATE p SET name = 'touched' WHERE id = 1`)
	s.CatchUp(t)
	checkTable(t, e, s, "p", cols, false)
	pg.Exec(t, "shop", `ALTER TABLE p ALTER COLUMN f TYPE double precision`, `UPDATE p SET name = 'widened' WHERE id = 2`,
		`ALTER TABLE p ALTER COLUMN i TYPE bigint`, `UPDATE p SET i = 5000000000 WHERE id = 3`)
	s.CatchUp(t)
	checkTable(t, e, s, "p", cols, false)
	compactAll(t, s)
	checkTable(t, e, s, "p", cols, true)
}
