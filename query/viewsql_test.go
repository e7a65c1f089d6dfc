package query

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/table"
	_ "github.com/duckdb/duckdb-go/v2"
)

// chg is one changelog row of the merge tests; name and note are nil for
// NULL, unchanged lists columns not sent.
type chg struct {
	op        string
	lsn, seq  int64
	id        int64
	name      any
	note      any
	unchanged []string
}

// snap is one snapshot-table row.
type snap struct {
	id   int64
	name any
	lsn  int64
}

func sqlValue(v any) string {
	if v == nil {
		return "NULL"
	}
	return quoteString(v.(string))
}

// writeChanges writes rows as a changelog Parquet file and returns its path.
func writeChanges(t *testing.T, db *sql.DB, dir string, rows []chg) string {
	t.Helper()
	var vals []string
	for _, r := range rows {
		un := "NULL::VARCHAR[]"
		if r.unchanged != nil {
			q := make([]string, len(r.unchanged))
			for i, u := range r.unchanged {
				q[i] = quoteString(u)
			}
			un = "[" + strings.Join(q, ",") + "]::VARCHAR[]"
		}
		vals = append(vals, fmt.Sprintf("(%d::BIGINT, %s, %s, %s, %d::BIGINT, %d::BIGINT, 0::BIGINT, TIMESTAMPTZ '2026-01-01 00:00:00+00', %s)",
			r.id, sqlValue(r.name), sqlValue(r.note), quoteString(r.op), r.lsn, r.seq, un))
	}
	path := filepath.Join(dir, fmt.Sprintf("c%d.parquet", len(vals)*1000+len(dir)+int(rows[0].lsn)))
	q := fmt.Sprintf(`COPY (SELECT * FROM (VALUES %s) v(id, name, note, _cdc_op, _cdc_lsn, _cdc_seq, _cdc_xid, _cdc_commit_ts, _cdc_unchanged)) TO %s (FIELD_IDS %s)`,
		strings.Join(vals, ", "), quoteString(path), changesFieldIDs)
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return path
}

// writeSnapshot writes a snapshot-table file without the note column (as
// if note was added after the snapshot).
func writeSnapshot(t *testing.T, db *sql.DB, dir string, rows []snap) string {
	t.Helper()
	var vals []string
	for _, r := range rows {
		vals = append(vals, fmt.Sprintf("(%d::BIGINT, %s, %d::BIGINT)", r.id, sqlValue(r.name), r.lsn))
	}
	path := filepath.Join(dir, "snapshot.parquet")
	q := fmt.Sprintf(`COPY (SELECT * FROM (VALUES %s) v(id, name, _cdc_lsn)) TO %s (FIELD_IDS {id: 11, name: 12, _cdc_lsn: 13})`,
		strings.Join(vals, ", "), quoteString(path))
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return path
}

// changesFieldIDs are the Iceberg field ids of the test changelog files
// (as iceberg-go writes them); the snapshot file's are 11, 12, 13.
const changesFieldIDs = `{id: 1, name: 2, note: 3, _cdc_op: 4, _cdc_lsn: 5, _cdc_seq: 6, _cdc_xid: 7, _cdc_commit_ts: 8,
	_cdc_unchanged: {__duckdb_field_id: 9, element: 10}}`

var testSpec = viewSpec{
	Source: []column{{"id", "BIGINT", 1}, {"name", "VARCHAR", 2}, {"note", "VARCHAR", 3}},
	Meta: []column{{"_cdc_op", "VARCHAR", 4}, {"_cdc_lsn", "BIGINT", 5}, {"_cdc_seq", "BIGINT", 6}, {"_cdc_xid", "BIGINT", 7},
		{"_cdc_commit_ts", "TIMESTAMPTZ", 8}, {"_cdc_unchanged", "VARCHAR[]", 9}},
	Keys:        []string{"id"},
	SnapshotIDs: map[int]int{1: 11, 2: 12, 5: 13},
}

func TestCurrentSQL(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	big := "big value"
	tests := []struct {
		name    string
		files   [][]chg // one Parquet file each
		snap    []snap  // nil: no snapshot table
		w       int64
		noKeys  bool
		want    []string // "id|name|note|lsn", ordered by id
		changes int      // rows in the __changes view
	}{
		{name: "latest change wins, delete drops", files: [][]chg{
			{{op: "c", lsn: 10, seq: 0, id: 1, name: "a"}, {op: "c", lsn: 10, seq: 1, id: 2, name: "b"}},
			{{op: "u", lsn: 20, seq: 0, id: 1, name: "a2"}, {op: "d", lsn: 20, seq: 1, id: 2, unchanged: []string{"name", "note"}}},
		}, want: []string{"1|a2|NULL|20"}, changes: 4},
		{name: "order by lsn then seq, not by file", files: [][]chg{
			{{op: "u", lsn: 30, seq: 1, id: 1, name: "last"}},
			{{op: "c", lsn: 10, seq: 0, id: 1, name: "first"}, {op: "u", lsn: 30, seq: 0, id: 1, name: "middle"}},
		}, want: []string{"1|last|NULL|30"}, changes: 3},
		{name: "unchanged columns keep the previous value", files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "a", note: big}},
			{{op: "u", lsn: 20, id: 1, name: "b", unchanged: []string{"note"}}},
			{{op: "u", lsn: 30, id: 1, name: "c", unchanged: []string{"note"}}},
		}, want: []string{"1|c|big value|30"}},
		{name: "a real NULL is not unchanged", files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "a", note: big}, {op: "u", lsn: 20, id: 1, name: "b", unchanged: []string{}}},
		}, want: []string{"1|b|NULL|20"}},
		{name: "truncate drops everything before it", files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "a"}, {op: "c", lsn: 10, seq: 1, id: 2, name: "b"}},
			{{op: "t", lsn: 20, id: 0}, {op: "c", lsn: 20, seq: 1, id: 3, name: "c"}, {op: "c", lsn: 30, id: 1, name: "again"}},
		}, want: []string{"1|again|NULL|30", "3|c|NULL|20"}},
		{name: "key change", files: [][]chg{
			{{op: "c", lsn: 10, id: 2, name: "two"}},
			{{op: "d", lsn: 20, seq: 0, id: 2, unchanged: []string{"name", "note"}}, {op: "u", lsn: 20, seq: 1, id: 4, name: "two"}},
		}, want: []string{"4|two|NULL|20"}},
		{name: "key change keeps an unchanged column of the old key", files: [][]chg{
			{{op: "c", lsn: 10, id: 2, name: "two", note: big}},
			{{op: "d", lsn: 20, seq: 0, id: 2, unchanged: []string{"name", "note"}}, {op: "u", lsn: 20, seq: 1, id: 4, name: "four", unchanged: []string{"note"}}},
		}, want: []string{"4|four|big value|20"}},
		{name: "key changes in a chain, from the snapshot", snap: []snap{{1, "a", 5}, {2, "b", 5}}, w: 100, files: [][]chg{
			{{op: "d", lsn: 100, seq: 0, id: 1, unchanged: []string{"name", "note"}}, {op: "u", lsn: 100, seq: 1, id: 7, note: "n", unchanged: []string{"name"}}},
			{{op: "u", lsn: 110, id: 7, note: "n2", unchanged: []string{"name"}}},
			{{op: "d", lsn: 120, seq: 0, id: 7, unchanged: []string{"name", "note"}}, {op: "u", lsn: 120, seq: 1, id: 8, unchanged: []string{"name", "note"}}},
		}, want: []string{"2|b|NULL|5", "8|a|n2|120"}},
		{name: "key change into a key deleted before takes the moved row's values", snap: []snap{{1, "a", 5}, {2, "b", 5}}, w: 100, files: [][]chg{
			{{op: "d", lsn: 100, id: 2, name: "b"}}, // REPLICA IDENTITY FULL: the whole old row
			{{op: "d", lsn: 110, seq: 0, id: 1, name: "a"}, {op: "u", lsn: 110, seq: 1, id: 2, note: "x", unchanged: []string{"name"}}},
		}, want: []string{"2|a|x|110"}},
		{name: "key moved away and back", files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "a", note: big}},
			{{op: "d", lsn: 20, seq: 0, id: 1, unchanged: []string{"name", "note"}}, {op: "u", lsn: 20, seq: 1, id: 9, name: "a9", unchanged: []string{"note"}}},
			{{op: "d", lsn: 30, seq: 0, id: 9, unchanged: []string{"name", "note"}}, {op: "u", lsn: 30, seq: 1, id: 1, name: "a1", unchanged: []string{"note"}}},
		}, want: []string{"1|a1|big value|30"}},
		{name: "a delete then an update of another row is no key change", snap: []snap{{1, "a", 5}, {2, "b", 5}}, w: 100, files: [][]chg{
			{{op: "d", lsn: 100, seq: 0, id: 1, name: "a"}, {op: "u", lsn: 100, seq: 1, id: 2, note: "x", unchanged: []string{"name"}}},
		}, want: []string{"2|b|x|100"}},
		{name: "REPLICA IDENTITY FULL: delete and update of the same key", snap: []snap{{1, "a", 5}}, w: 100, files: [][]chg{
			{{op: "d", lsn: 100, seq: 0, id: 1, name: "a"}, {op: "u", lsn: 100, seq: 1, id: 1, note: "x", unchanged: []string{"name"}}},
		}, want: []string{"1|a|x|100"}},
		{name: "delete then insert again", files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "old"}, {op: "d", lsn: 20, id: 1}, {op: "c", lsn: 30, id: 1, name: "new"}},
		}, want: []string{"1|new|NULL|30"}},
		{name: "no changes", files: nil, want: nil},
		{name: "snapshot plus tail", snap: []snap{{1, "a", 5}, {2, "b", 6}, {3, "c", 7}}, w: 100, files: [][]chg{
			// rows below the watermark are in the snapshot already
			{{op: "d", lsn: 6, id: 1}, {op: "u", lsn: 100, id: 2, name: "b2"}},
			{{op: "d", lsn: 110, id: 3}, {op: "c", lsn: 120, id: 4, name: "d", note: "n"}},
		}, want: []string{"1|a|NULL|5", "2|b2|NULL|100", "4|d|n|120"}, changes: 4},
		{name: "unchanged takes the snapshot value", snap: []snap{{1, "a", 5}}, w: 100, files: [][]chg{
			{{op: "u", lsn: 100, id: 1, note: "x", unchanged: []string{"name"}}},
		}, want: []string{"1|a|x|100"}},
		{name: "truncate drops the snapshot", snap: []snap{{1, "a", 5}, {2, "b", 6}}, w: 100, files: [][]chg{
			{{op: "c", lsn: 100, id: 7, name: "before"}, {op: "t", lsn: 110, id: 0}, {op: "c", lsn: 120, id: 5, name: "e"}},
		}, want: []string{"5|e|NULL|120"}},
		{name: "empty snapshot", snap: []snap{}, w: 100, files: [][]chg{
			{{op: "c", lsn: 100, id: 1, name: "a"}},
		}, want: []string{"1|a|NULL|100"}},
		{name: "no primary key: all columns", noKeys: true, files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "a"}, {op: "c", lsn: 10, seq: 1, id: 1, name: "b"}},
			{{op: "d", lsn: 20, id: 1, name: "a"}, {op: "u", lsn: 20, seq: 1, id: 1, name: "c"}},
		}, want: []string{"1|b|NULL|10", "1|c|NULL|20"}},
		{name: "no primary key: duplicates count", noKeys: true, files: [][]chg{
			{{op: "r", lsn: 5, id: 1, name: "a"}, {op: "c", lsn: 10, id: 1, name: "a"}, {op: "c", lsn: 10, seq: 1, id: 1, name: "a"}},
			{{op: "d", lsn: 20, id: 1, name: "a"}},
		}, want: []string{"1|a|NULL|10", "1|a|NULL|10"}},
		{name: "no primary key: an update's unchanged column is the old row's", noKeys: true, files: [][]chg{
			{{op: "c", lsn: 10, id: 1, name: "a", note: big}, {op: "c", lsn: 10, seq: 1, id: 1, name: "a", note: big}},
			{{op: "d", lsn: 20, id: 1, name: "a", note: big}, {op: "u", lsn: 20, seq: 1, id: 1, name: "b", unchanged: []string{"note"}}},
		}, want: []string{"1|a|big value|10", "1|b|big value|20"}},
		{name: "no primary key: snapshot rows count", noKeys: true, snap: []snap{{1, "a", 5}, {1, "a", 5}}, w: 100, files: [][]chg{
			{{op: "d", lsn: 100, id: 1, name: "a"}, {op: "c", lsn: 110, id: 2, name: "b"}},
		}, want: []string{"1|a|NULL|5", "2|b|NULL|110"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			spec := testSpec
			if tc.noKeys {
				spec.Keys = nil
			}
			for _, f := range tc.files {
				spec.AllChanges = append(spec.AllChanges, writeChanges(t, db, dir, f))
			}
			spec.Tail = spec.AllChanges
			if tc.snap != nil {
				spec.HasSnapshot, spec.Watermark = true, tc.w
				if len(tc.snap) > 0 {
					spec.Snapshot = []string{writeSnapshot(t, db, dir, tc.snap)}
				}
			}
			got := queryStrings(t, db, "SELECT * FROM ("+currentSQL(spec)+") ORDER BY ALL")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("current state:\n got %q\nwant %q\nSQL:\n%s", got, tc.want, currentSQL(spec))
			}
			if tc.changes > 0 {
				n := queryStrings(t, db, "SELECT count(*) FROM ("+changesSQL(spec)+")")
				if n[0] != fmt.Sprint(tc.changes) {
					t.Errorf("changes view has %s rows, want %d", n[0], tc.changes)
				}
			}
		})
	}
}

// queryStrings runs q and returns each row's values joined by "|".
func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				s[i] = "NULL"
			} else {
				s[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(s, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckSerialized(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		sql    string
		ok     bool
		tables []tableName
	}{
		{"SELECT 1", true, nil},
		{"select * from public.orders;", true, []tableName{{"", "public", "orders"}}},
		{"WITH a AS (SELECT * FROM shop.public.orders) SELECT * FROM a JOIN public.customers c USING (id)", true,
			[]tableName{{"", "", "a"}, {"", "public", "customers"}, {"shop", "public", "orders"}}},
		{"SELECT * FROM t1, (SELECT * FROM s.t2) x JOIN c.s.t3 USING (id)", true,
			[]tableName{{"", "", "t1"}, {"", "s", "t2"}, {"c", "s", "t3"}}},
		{"SELECT 1; SELECT 2", false, nil},
		{"COPY (SELECT 1) TO '/tmp/x.csv'", false, nil},
		{"ATTACH '/tmp/x.db' AS x", false, nil},
		{"INSTALL httpfs", false, nil},
		{"LOAD httpfs", false, nil},
		{"SET threads = 1", false, nil},
		{"CREATE TABLE x (a int)", false, nil},
		{"PRAGMA version", false, nil},
		{"", false, nil},
		{"SELEC 1", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			var js string
			if err := db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", tc.sql).Scan(&js); err != nil {
				t.Fatal(err)
			}
			p, err := checkSerialized(js)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			got := append([]tableName{}, p.refs...)
			sortNames(got)
			if tc.ok && !reflect.DeepEqual(got, tc.tables) && !(len(got) == 0 && len(tc.tables) == 0) {
				t.Errorf("tables = %v, want %v", got, tc.tables)
			}
		})
	}
}

func sortNames(ns []tableName) {
	key := func(n tableName) string { return n.Catalog + "." + n.Schema + "." + n.Name }
	for i := range ns {
		for j := i + 1; j < len(ns); j++ {
			if key(ns[j]) < key(ns[i]) {
				ns[i], ns[j] = ns[j], ns[i]
			}
		}
	}
}

func TestResolve(t *testing.T) {
	tables := []lakeTable{
		{Source: "shop", Schema: "public", Name: "orders"},
		{Source: "shop", Schema: "public", Name: "customers"},
		{Source: "crm", Schema: "public", Name: "customers"},
	}
	for i := range tables {
		tables[i].ns = table.Identifier{tables[i].Source, tables[i].Schema}
		tables[i].ident = tables[i].Name
	}
	got := resolve([]tableName{
		{"", "public", "orders"},                 // unique
		{"", "public", "customers"},              // ambiguous: skipped
		{"crm", "public", "customers"},           // three-part
		{"", "public", "ORDERS__changes"},        // same table as orders
		{"", "", "orders"},                       // no schema: not ours
		{"shop", "public", "missing"},            // unknown
		{"SHOP", "PUBLIC", "customers__changes"}, // case-insensitive
	}, tables)
	want := []lakeTable{tables[0], tables[2], tables[1]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolve = %v, want %v", got, want)
	}
	u := unique(tables)
	if !u["shop.public.orders"] || u["shop.public.customers"] || u["crm.public.customers"] {
		t.Errorf("unique = %v", u)
	}
}

func TestPGNames(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		sql  string
		want []string
	}{
		{`SELECT count(*), sum(o.amount), o.x, 1::int, x::int, CASE WHEN true THEN 2 END, a + b, coalesce(a, b),
			date_trunc('hour', t), 1 AS one FROM t o`,
			[]string{"count", "sum", "x", "int4", "x", "case", "?column?", "coalesce", "date_trunc", ""}},
		{`SELECT * FROM t`, nil},
		{`SELECT a, * FROM t`, nil},
		{`SELECT a FROM t UNION ALL SELECT b FROM u`, []string{"a"}},
		{`WITH x AS (SELECT 1 AS a) SELECT max(a) FROM x`, []string{"max"}},
	}
	for _, tc := range tests {
		var js string
		if err := db.QueryRow("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", tc.sql).Scan(&js); err != nil {
			t.Fatal(err)
		}
		p, err := checkSerialized(js)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.names, tc.want) {
			t.Errorf("%s: names = %q, want %q", tc.sql, p.names, tc.want)
		}
	}
}
