package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cdclake/cdclake/lakeformat"
)

// Errors a query can fail with; test for them with errors.Is.
var (
	// ErrRejected: the statement is not one read-only SELECT.
	ErrRejected = errors.New("statement rejected")
	// ErrTimeout: the query ran longer than its time limit and was cancelled.
	ErrTimeout = errors.New("query timed out")
	// ErrTooLarge: the result has more rows or bytes than allowed.
	ErrTooLarge = errors.New("result too large")
)

// tableName is a table reference as written in a query.
type tableName struct {
	Catalog, Schema, Name string
}

// parsed is what the check learned about a statement.
type parsed struct {
	refs []tableName // base tables the statement names
	// names are PostgreSQL's names for the result columns ("" keeps
	// DuckDB's); nil when unknown (SELECT *).
	names []string
}

// serialized is the answer of DuckDB's json_serialize_sql.
type serialized struct {
	Error        bool              `json:"error"`
	ErrorType    string            `json:"error_type"`
	ErrorMessage string            `json:"error_message"`
	Statements   []json.RawMessage `json:"statements"`
}

// checkSerialized accepts exactly one SELECT statement, given DuckDB's
// parse of it (json_serialize_sql serializes SELECT statements only), and
// returns the tables it names.
func checkSerialized(js string) (parsed, error) {
	var s serialized
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return parsed{}, fmt.Errorf("read parse tree: %w", err)
	}
	if s.Error {
		if s.ErrorType == "not implemented" {
			return parsed{}, fmt.Errorf("%w: only a single SELECT (or WITH ... SELECT) is allowed; the lake is read-only", ErrRejected)
		}
		return parsed{}, fmt.Errorf("%w: %s", ErrRejected, s.ErrorMessage)
	}
	switch len(s.Statements) {
	case 0:
		return parsed{}, fmt.Errorf("%w: empty query", ErrRejected)
	case 1:
	default:
		return parsed{}, fmt.Errorf("%w: %d statements given; send one SELECT per request", ErrRejected, len(s.Statements))
	}
	var tree any
	if err := json.Unmarshal(s.Statements[0], &tree); err != nil {
		return parsed{}, fmt.Errorf("read parse tree: %w", err)
	}
	var p parsed
	if m, ok := tree.(map[string]any); ok {
		p.names = pgNames(m["node"])
	}
	seen := map[tableName]bool{}
	walk(tree, func(m map[string]any) {
		if m["type"] != "BASE_TABLE" {
			return
		}
		str := func(k string) string { v, _ := m[k].(string); return v }
		n := tableName{Catalog: str("catalog_name"), Schema: str("schema_name"), Name: str("table_name")}
		if n.Name != "" && !seen[n] {
			seen[n] = true
			p.refs = append(p.refs, n)
		}
	})
	return p, nil
}

// walk calls fn for every JSON object in v.
func walk(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(v)
		for _, c := range v {
			walk(c, fn)
		}
	case []any:
		for _, c := range v {
			walk(c, fn)
		}
	}
}

// resolve maps the tables a query names to lake tables: source.schema.table
// (catalog = source) or schema.table when exactly one source has it; a
// __changes suffix names the same lake table's changelog view.
func resolve(refs []tableName, tables []lakeTable) []lakeTable {
	var out []lakeTable
	seen := map[string]bool{}
	for _, r := range refs {
		if r.Schema == "" {
			continue
		}
		name := strings.ToLower(r.Name)
		if base, ok := strings.CutSuffix(name, lakeformat.ChangesSuffix); ok {
			name = base
		}
		var match []lakeTable
		for _, t := range tables {
			if strings.ToLower(t.Schema) == strings.ToLower(r.Schema) && strings.ToLower(t.Name) == name &&
				(r.Catalog == "" || strings.ToLower(t.Source) == strings.ToLower(r.Catalog)) {
				match = append(match, t)
			}
		}
		if len(match) != 1 || seen[match[0].String()] {
			continue
		}
		seen[match[0].String()] = true
		out = append(out, match[0])
	}
	return out
}

// unique reports, per lake table, whether its schema.table is unique
// across sources (then it also gets a two-part name).
func unique(tables []lakeTable) map[string]bool {
	n := map[string]int{}
	for _, t := range tables {
		n[strings.ToLower(t.Schema+"."+t.Name)]++
	}
	out := map[string]bool{}
	for _, t := range tables {
		out[t.String()] = n[strings.ToLower(t.Schema+"."+t.Name)] == 1
	}
	return out
}

// pgNames returns the names PostgreSQL gives the result columns of a
// query node whose expressions have no alias (count(*) is "count", not
// DuckDB's "count_star()"); "" keeps DuckDB's name.
func pgNames(node any) []string {
	n, _ := node.(map[string]any)
	for n != nil && n["type"] == "SET_OPERATION_NODE" {
		n, _ = n["left"].(map[string]any)
	}
	if n == nil || n["type"] != "SELECT_NODE" {
		return nil
	}
	list, _ := n["select_list"].([]any)
	names := make([]string, len(list))
	for i, e := range list {
		m, _ := e.(map[string]any)
		if m == nil || m["class"] == "STAR" {
			return nil
		}
		if a, _ := m["alias"].(string); a == "" {
			names[i] = exprName(m)
		}
	}
	return names
}

// pgCastNames are PostgreSQL's names of DuckDB types, as a cast's column
// name.
var pgCastNames = map[string]string{
	"INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "DOUBLE": "float8", "FLOAT": "float4",
	"VARCHAR": "text", "DECIMAL": "numeric", "BOOLEAN": "bool", "DATE": "date", "TIMESTAMP": "timestamp",
	"TIMESTAMP WITH TIME ZONE": "timestamptz", "INTERVAL": "interval", "BLOB": "bytea",
}

// exprName is PostgreSQL's FigureColname for one expression.
func exprName(m map[string]any) string {
	switch m["class"] {
	case "COLUMN_REF":
		if parts, _ := m["column_names"].([]any); len(parts) > 0 {
			s, _ := parts[len(parts)-1].(string)
			return s
		}
	case "FUNCTION":
		f, _ := m["function_name"].(string)
		if f == "count_star" {
			return "count"
		}
		if f != "" && strings.Trim(f, "abcdefghijklmnopqrstuvwxyz_0123456789") == "" {
			return f
		}
	case "CAST":
		if c, ok := m["child"].(map[string]any); ok {
			if s := exprName(c); s != "?column?" {
				return s
			}
		}
		if t, ok := m["cast_type"].(map[string]any); ok {
			id, _ := t["id"].(string)
			if s, ok := pgCastNames[id]; ok {
				return s
			}
			return strings.ToLower(id)
		}
	case "CASE":
		return "case"
	case "OPERATOR":
		if m["type"] == "OPERATOR_COALESCE" {
			return "coalesce"
		}
	}
	return "?column?"
}
