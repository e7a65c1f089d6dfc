package query

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// comparisons are questions asked of PostgreSQL and the lake alike.
var comparisons = []string{
	`SELECT id, customer_id, status, amount, created_at, updated_at FROM public.orders ORDER BY id`,
	`SELECT status, count(*), sum(amount) FROM public.orders GROUP BY status ORDER BY status`,
	`SELECT c.city, count(o.id), sum(o.amount), max(o.updated_at) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id GROUP BY c.city ORDER BY c.city`,
	`SELECT date_trunc('hour', created_at) AS hour, count(*), sum(amount) FROM public.orders GROUP BY 1 ORDER BY 1`,
	`SELECT id, name, city FROM public.customers ORDER BY id`,
	`SELECT id, md5(body), n FROM public.docs ORDER BY id`,
	`SELECT id, v FROM public.scratch ORDER BY id`,
}

func openEngine(t *testing.T, cat *catalog.Catalog, o Options) *Engine {
	t.Helper()
	e, err := Open(context.Background(), cat, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// resultRows formats a result as PostgreSQL text rows ("NULL" for null).
func resultRows(r *Result) [][]string {
	var out [][]string
	for _, rec := range r.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				v, ok := Text(rec.Column(c), i)
				if !ok {
					v = "NULL"
				}
				row[c] = v
			}
			out = append(out, row)
		}
	}
	return out
}

// compare asks PostgreSQL and the engine the same questions.
func compare(t *testing.T, e *Engine, url string, queries ...string) {
	t.Helper()
	for _, q := range queries {
		want := shoptest.PGRows(t, url, q)
		res, err := e.Query(context.Background(), q)
		if err != nil {
			t.Errorf("lake: %s: %v", q, err)
			continue
		}
		got := resultRows(res)
		res.Release()
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nlake (%d rows):\n%s\npostgres (%d rows):\n%s", q, len(got), head(got), len(want), head(want))
		}
	}
}

func head(rows [][]string) string {
	var b strings.Builder
	for i, r := range rows {
		if i == 8 {
			fmt.Fprintf(&b, "  ... %d more\n", len(rows)-i)
			break
		}
		fmt.Fprintf(&b, "  %s\n", strings.Join(r, " | "))
	}
	return b.String()
}

// makeSnapshot creates the snapshot table of public.<name> holding the
// rows of q (source columns and _cdc_lsn), as compaction would, with the
// watermark just above the last change the rows hold. No ingest may run.
func makeSnapshot(t *testing.T, e *Engine, s *shoptest.Shop, name, q string) {
	t.Helper()
	ctx := context.Background()
	res, err := e.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	// the changelog's cdclake.source-lsn may equal the LSN of rows it
	// holds (initial-copy rows), so the watermark comes from the rows
	last, err := e.Query(ctx, "SELECT coalesce(max(_cdc_lsn) + 1, 0) FROM public."+name+lakeformat.ChangesSuffix)
	if err != nil {
		t.Fatal(err)
	}
	w := resultRows(last)[0][0]
	last.Release()
	ice := s.Cat.Iceberg()
	changes, err := ice.LoadTable(ctx, table.Identifier{s.DB, "public", name + lakeformat.ChangesSuffix})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(res.Schema, false)
	if err != nil {
		t.Fatal(err)
	}
	props := iceberg.Properties{lakeformat.PropSourceLSN: w, lakeformat.PropPrimaryKey: changes.Properties()[lakeformat.PropPrimaryKey]}
	tbl, err := ice.CreateTable(ctx, table.Identifier{s.DB, "public", name}, sc, icecat.WithProperties(props))
	if err != nil {
		t.Fatal(err)
	}
	at := array.NewTableFromRecords(res.Schema, res.Records)
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
}
