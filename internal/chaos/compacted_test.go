package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
)

// compareCompacted runs "cdclake compact" on the lake and compares each
// current-state table it writes ([source, public, name]) with the source
// row for row.
func compareCompacted(t *testing.T, cat *catalog.Catalog, conn *pgx.Conn, env []string, lakeArgs []string, source string, tables []string) int {
	t.Helper()
	code, out := runOnce(t, "compact", env, 3*time.Minute, append([]string{"compact"}, lakeArgs...)...)
	if code != 0 {
		t.Errorf("cdclake compact exited %d: %s", code, lastError(out))
		return 0
	}
	n := 0
	for _, name := range tables {
		got, err := readState(context.Background(), cat, table.Identifier{source, "public", name})
		if err != nil {
			t.Errorf("compacted %s: %v", name, err)
			continue
		}
		want, err := ReadSource(context.Background(), conn, name)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for id, w := range want {
			if g, ok := got[id]; !ok || g != w {
				if bad++; bad <= 5 {
					t.Errorf("compacted %s: id %d is %+v (present %v), the source has %+v", name, id, g, ok, w)
				}
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				if bad++; bad <= 5 {
					t.Errorf("compacted %s: id %d is not in the source", name, id)
				}
			}
		}
		if bad > 0 {
			t.Errorf("compacted %s: %d rows differ from the source's %d", name, bad, len(want))
		}
		n += len(want)
	}
	return n
}

// readState reads a current-state table of the workload's shape.
func readState(ctx context.Context, cat *catalog.Catalog, ident table.Identifier) (map[int64]SourceRow, error) {
	tbl, err := cat.Iceberg().LoadTable(ctx, ident)
	if err != nil {
		return nil, err
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	out := map[int64]SourceRow{}
	tr := array.NewTableReader(at, 1<<14)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		idx := func(c string) int {
			if i := rec.Schema().FieldIndices(c); len(i) > 0 {
				return i[0]
			}
			return -1
		}
		ci, cv, cp := idx("id"), idx("ver"), idx("pad")
		if ci < 0 || cv < 0 || cp < 0 {
			return nil, fmt.Errorf("table %v lacks id, ver or pad: %v", ident, rec.Schema())
		}
		ids, vers, pads := rec.Column(ci).(*array.Int64), rec.Column(cv).(*array.Int64), rec.Column(cp).(*array.String)
		for i := range int(rec.NumRows()) {
			if _, dup := out[ids.Value(i)]; dup {
				return nil, fmt.Errorf("id %d twice", ids.Value(i))
			}
			out[ids.Value(i)] = SourceRow{Ver: vers.Value(i), Pad: pads.Value(i)}
		}
	}
	return out, tr.Err()
}
