package chaos

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cdclake/cdclake/internal/pgtest"
)

// TestChaosSQLASCIISource streams a SQL_ASCII database whose text holds
// bytes that are not UTF-8. Arrow and Parquet strings are UTF-8 (DuckDB
// refuses a file with invalid ones), so the lake must never hold them:
// PostgreSQL itself refuses to convert such text for cdclake's UTF8
// connections, in the snapshot's COPY and in the replication stream, and
// ingest must stop on that error rather than skip the change.
func TestChaosSQLASCIISource(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(t, "postgres", "CREATE DATABASE legacy ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
		"CREATE ROLE chaos LOGIN REPLICATION PASSWORD '"+pgPassword+"'")
	src := &source{pg: pg, db: "legacy", admin: pg.URL("legacy"), url: pg.UserURL("chaos", pgPassword, "legacy")}
	pg.Exec(t, "legacy", "CREATE TABLE items (id bigint PRIMARY KEY, ver bigint NOT NULL, pad text NOT NULL)",
		"INSERT INTO items VALUES (1, 1, 'plain')")
	src.publish(t, "items")
	lake := filepath.Join(t.TempDir(), "lake")
	args := []string{"ingest", "--source", src.url, "--lake", lake, "--catch-up"}
	env := childEnv(t, nil, "")
	if code, out := runOnce(t, "legacy", env, 2*time.Minute, args...); code != 0 {
		t.Fatalf("ingest of plain rows exited %d: %s", code, lastError(out))
	}
	pg.Exec(t, "legacy", `INSERT INTO items VALUES (2, 1, E'caf\xe9')`, `UPDATE items SET ver = 2 WHERE id = 1`)
	for i := range 2 { // at every restart: the stream cannot pass the row
		code, out := runOnce(t, "legacy", env, 2*time.Minute, args...)
		if msg := lastError(out); code != 1 || !strings.Contains(msg, `invalid byte sequence for encoding "UTF8"`) {
			t.Fatalf("run %d over a non-UTF-8 row: exit %d, %q; want exit 1 and PostgreSQL's encoding error", i+1, code, msg)
		}
	}
	cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
	rows, err := ReadChangelog(context.Background(), cat, "legacy", "items")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ID != 1 || r.Op != "r" {
			t.Errorf("%s row of id %d in the lake: nothing after the non-UTF-8 row may be", r.Op, r.ID)
		}
		if !r.PadNull && !utf8.ValidString(r.Pad) {
			t.Errorf("%s row of id %d holds a string that is not UTF-8: %q", r.Op, r.ID, r.Pad)
		}
	}
}
