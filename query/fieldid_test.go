package query

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRelationByFieldID reads files written under older schemas: a column
// renamed since (its old name is taken by a new column), a column
// promoted since, and one no file has.
func TestRelationByFieldID(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	for _, q := range []string{
		`COPY (SELECT 1::BIGINT AS id, 'x' AS title, 5::INTEGER AS qty) TO ` + quoteString(a) +
			` (FIELD_IDS {id: 1, title: 2, qty: 3})`,
		`COPY (SELECT 2::BIGINT AS id, 'y' AS name, 5000000007::BIGINT AS qty, 'new' AS title) TO ` + quoteString(b) +
			` (FIELD_IDS {id: 1, name: 2, qty: 3, title: 4})`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cols := []column{{"id", "BIGINT", 1}, {"name", "VARCHAR", 2}, {"qty", "BIGINT", 3}, {"title", "VARCHAR", 4}, {"extra", "INTEGER", 0}}
	got := queryStrings(t, db, "SELECT * FROM "+relation(cols, []string{a, b})+" ORDER BY id")
	want := []string{"1|x|5|NULL|NULL", "2|y|5000000007|new|NULL"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := queryStrings(t, db, "SELECT count(*) FROM "+relation(cols, nil)); got[0] != "0" {
		t.Errorf("no files: %v rows", got)
	}
}
