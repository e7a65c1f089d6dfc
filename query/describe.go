package query

import (
	"context"
	"fmt"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/cdclake/cdclake/catalog"
)

// Column is one result column as known before the statement runs.
type Column struct {
	Name string
	// Type is the PostgreSQL type name, as TypeName gives for the Arrow
	// type the column will have.
	Type string
}

// Description is the shape of a statement: its result columns and the
// types of its parameters $1, $2, ... ("text" when DuckDB cannot tell).
type Description struct {
	Columns []Column
	Params  []string
}

// Describe prepares a statement without running it and returns its shape
// (for the PostgreSQL extended query protocol).
func (e *Engine) Describe(ctx context.Context, sqlText string) (*Description, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	d := &Description{}
	err := e.withViews(ctx, sqlText, func(p parsed, _ []catalog.Source, _ []lakeTable) error {
		conn, err := e.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("connect duckdb: %w", err)
		}
		defer conn.Close()
		return conn.Raw(func(dc any) error {
			st, err := prepareSelect(ctx, dc, sqlText)
			if err != nil {
				return err
			}
			defer st.Close()
			for i := 1; i <= st.NumInput(); i++ {
				t, err := st.ParamType(i)
				if err != nil {
					return err
				}
				d.Params = append(d.Params, duckTypeName(t))
			}
			n, err := st.ColumnCount()
			if err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				name, err := st.ColumnName(i)
				if err != nil {
					return err
				}
				t, err := st.ColumnType(i)
				if err != nil {
					return err
				}
				if i < len(p.names) && len(p.names) == n && p.names[i] != "" {
					name = p.names[i]
				}
				d.Columns = append(d.Columns, Column{Name: name, Type: duckTypeName(t)})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// duckTypeName maps a DuckDB type to the PostgreSQL name TypeName gives
// for the Arrow type DuckDB exports it as.
func duckTypeName(t duckdb.Type) string {
	switch t {
	case duckdb.TYPE_BOOLEAN:
		return "boolean"
	case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_UTINYINT:
		return "smallint"
	case duckdb.TYPE_INTEGER, duckdb.TYPE_USMALLINT:
		return "integer"
	case duckdb.TYPE_BIGINT, duckdb.TYPE_UINTEGER:
		return "bigint"
	case duckdb.TYPE_UBIGINT, duckdb.TYPE_HUGEINT, duckdb.TYPE_DECIMAL:
		return "numeric"
	case duckdb.TYPE_FLOAT:
		return "real"
	case duckdb.TYPE_DOUBLE:
		return "double precision"
	case duckdb.TYPE_BLOB:
		return "bytea"
	case duckdb.TYPE_DATE:
		return "date"
	case duckdb.TYPE_TIME:
		return "time"
	case duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS, duckdb.TYPE_TIMESTAMP_NS:
		return "timestamp"
	case duckdb.TYPE_TIMESTAMP_TZ:
		return "timestamptz"
	}
	return "text"
}
