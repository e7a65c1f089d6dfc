//go:build duckdb_arrow

package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // driver "duckdb"
)

func init() { duckMerge = duckdbMerge }

// duckdbMerge runs the reference merge in DuckDB: the last change of each
// key after the watermark replaces the snapshot row, deletes drop it,
// written as one zstd Parquet file.
func duckdbMerge(ctx context.Context, base, changes []string, keys, cols []string, from, to uint64, out string) (int64, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	list := func(paths []string) string {
		q := make([]string, len(paths))
		for i, p := range paths {
			q[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	var match []string
	for _, k := range keys {
		match = append(match, fmt.Sprintf("l.%s = b.%s", k, k))
	}
	colList := strings.Join(cols, ", ")
	q := fmt.Sprintf(`COPY (
	WITH last AS (
		SELECT * FROM read_parquet(%s) WHERE _cdc_lsn >= %d AND _cdc_lsn < %d
		QUALIFY row_number() OVER (PARTITION BY %s ORDER BY _cdc_lsn DESC, _cdc_seq DESC) = 1
	)
	SELECT %s, _cdc_lsn FROM read_parquet(%s) b WHERE NOT EXISTS (SELECT 1 FROM last l WHERE %s)
	UNION ALL
	SELECT %s, _cdc_lsn FROM last WHERE _cdc_op <> 'd'
) TO '%s' (FORMAT parquet, COMPRESSION zstd)`,
		list(changes), from, to, strings.Join(keys, ", "), colList, list(base), strings.Join(match, " AND "), colList, out)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return 0, err
	}
	var n int64
	err = db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", out)).Scan(&n)
	return n, err
}
