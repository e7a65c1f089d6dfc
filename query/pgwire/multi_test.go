package pgwire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// multiMessages are simple-query messages of several statements, each
// answered the same by the lake and by PostgreSQL: session statements
// acknowledged, every SELECT answered, semicolons inside quotes, dollar
// quotes and comments not splitting.
var multiMessages = []string{
	`SET application_name='x'; SELECT 2 AS two`,
	`BEGIN; SELECT 1 AS one; COMMIT`,
	`SET statement_timeout = 1000; SELECT count(*) AS n FROM public.customers`,
	`START TRANSACTION READ ONLY; SELECT 4 AS four; ROLLBACK`,
	`SELECT 'a;b' AS s; SELECT $$c;d$$ AS d, $t$e;'f$t$ AS e; -- a comment; SELECT 0
SELECT /* ; nested /* ; */ ; */ 3 AS three;;`,
	`SELECT E'g\';h' AS g, "x;y" FROM (SELECT 5 AS "x;y") q; RESET application_name`,
	`SELECT 6 AS six; SELECT city, count(*) AS n FROM public.customers GROUP BY city ORDER BY city`,
}

// multiError fails in its second statement: the first is answered, the
// third never runs.
const multiError = `SELECT 7 AS seven; SELECT no_such_column FROM public.customers; SELECT 8 AS eight`

// TestMultiStatement sends several statements in one simple-query
// message through psql, pgx and psycopg2 and compares what the lake
// answers with what PostgreSQL answers.
func TestMultiStatement(t *testing.T) {
	s, e := lakeEngine(t)
	port := startServer(t, e, Options{Password: token})
	lakeURL := fmt.Sprintf("postgres://analyst:%s@127.0.0.1:%d/lake?sslmode=disable", token, port)

	t.Run("psql", func(t *testing.T) {
		for _, m := range multiMessages {
			got, err := psql(t, port, token, "-c", m)
			if err != nil {
				t.Fatalf("psql: %v\n%s", err, got)
			}
			want, err := exec.Command(psqlPath(t), "--no-psqlrc", s.URL, "-c", m).CombinedOutput()
			if err != nil {
				t.Fatalf("psql on postgres: %v\n%s", err, want)
			}
			if got != string(want) {
				t.Errorf("%s\npsql on the lake:\n%s\npsql on postgres:\n%s", m, got, want)
			}
		}
		got, err := psql(t, port, token, "-At", "-c", multiError)
		if err == nil || !strings.HasPrefix(got, "7\n") || strings.Contains(got, "8") {
			t.Errorf("%s: %v\n%s", multiError, err, got)
		}
	})

	t.Run("pgx", func(t *testing.T) {
		ctx := context.Background()
		lake, err := pgx.Connect(ctx, lakeURL)
		if err != nil {
			t.Fatal(err)
		}
		defer lake.Close(ctx)
		pg, err := pgx.Connect(ctx, s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer pg.Close(ctx)
		for _, m := range append(multiMessages, multiError) {
			got, want := execResults(ctx, lake.PgConn(), m), execResults(ctx, pg.PgConn(), m)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s\nlake:     %q\npostgres: %q", m, got, want)
			}
		}
		// a prepared statement holds one statement
		for _, c := range []*pgx.Conn{lake, pg} {
			_, err := c.Prepare(ctx, "two", `SET application_name = 'y'; SELECT 2`)
			if got := sqlState(err); got != "42601" {
				t.Errorf("prepare two statements: %v, want 42601", err)
			}
		}
		// pgx.Conn.Query in the simple protocol reads the first result
		for _, m := range multiMessages[:3] {
			got := rowValues(t, lake, m, pgx.QueryExecModeSimpleProtocol)
			want := rowValues(t, pg, m, pgx.QueryExecModeSimpleProtocol)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s\nlake: %v\npostgres: %v", m, got, want)
			}
		}
	})

	t.Run("psycopg2", func(t *testing.T) {
		py := psycopg2Python(t)
		in, _ := json.Marshal(append(multiMessages, multiError))
		run := func(dsn string) string {
			cmd := exec.Command(py, "-c", psycopg2Script, dsn)
			cmd.Stdin = strings.NewReader(string(in))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v\n%s", err, out)
			}
			return string(out)
		}
		got, want := run(lakeURL), run(s.URL)
		if got != want {
			t.Errorf("psycopg2 on the lake:\n%s\npsycopg2 on postgres:\n%s", got, want)
		}
	})
}

// execResults runs a simple-query message and describes every result:
// its command tag, columns and rows, or its error's SQLSTATE.
func execResults(ctx context.Context, conn *pgconn.PgConn, sql string) []string {
	results, err := conn.Exec(ctx, sql).ReadAll()
	var out []string
	for _, r := range results {
		cols := make([]string, len(r.FieldDescriptions))
		for i, f := range r.FieldDescriptions {
			cols[i] = f.Name
		}
		line := fmt.Sprintf("%s %v", r.CommandTag, cols)
		for _, row := range r.Rows {
			vals := make([]string, len(row))
			for i, v := range row {
				vals[i] = string(v)
			}
			line += fmt.Sprintf(" %q", vals)
		}
		if r.Err != nil {
			line += " err " + sqlState(r.Err)
		}
		out = append(out, line)
	}
	if err != nil {
		out = append(out, "err "+sqlState(err))
	}
	return out
}

func sqlState(err error) string {
	var pge *pgconn.PgError
	if errors.As(err, &pge) {
		return pge.Code
	}
	return err.Error()
}

// psycopg2Python returns a Python that imports psycopg2 (Debian's
// python3-psycopg2, which scripts/test.sh installs).
func psycopg2Python(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import psycopg2").Run() == nil {
			return py
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no python3 with psycopg2 (apt-get install python3-psycopg2)")
	}
	t.Skip("no python3 with psycopg2")
	return ""
}

// psycopg2Script runs each message of a JSON list read from stdin, in
// psycopg2's default mode (it sends BEGIN first; commit or rollback
// after), and prints what psycopg2 reports.
const psycopg2Script = `
import json, sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
for m in json.load(sys.stdin):
    cur = conn.cursor()
    try:
        cur.execute(m)
        cols = [d[0] for d in cur.description] if cur.description else None
        rows = cur.fetchall() if cur.description else None
        print(repr((cur.statusmessage, cols, rows)))
        conn.commit()
    except psycopg2.Error as e:
        print("error", e.pgcode)
        conn.rollback()
    cur.close()
conn.close()
`

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"", nil},
		{" ;; -- only a comment; \n /* ; */ ;", nil},
		{"SELECT 1", []string{"SELECT 1"}},
		{"SET a = 1; SELECT 2;", []string{"SET a = 1", "SELECT 2"}},
		{"SELECT 'a;''b'; SELECT 2", []string{"SELECT 'a;''b'", "SELECT 2"}},
		{`SELECT E'a\';b'; SELECT 2`, []string{`SELECT E'a\';b'`, "SELECT 2"}},
		{`SELECT 'a\'; SELECT 2`, []string{`SELECT 'a\'`, "SELECT 2"}}, // standard_conforming_strings
		{`SELECT "a;""b" FROM t; SELECT 2`, []string{`SELECT "a;""b" FROM t`, "SELECT 2"}},
		{"SELECT $$a;b$$; SELECT $x$ $$; $x$", []string{"SELECT $$a;b$$", "SELECT $x$ $$; $x$"}},
		{"SELECT $1; SELECT a$b$c FROM t; SELECT 3", []string{"SELECT $1", "SELECT a$b$c FROM t", "SELECT 3"}},
		{"SELECT 1 /* a /* b; */ c; */; SELECT 2 -- x; y\n; SELECT 3", []string{"SELECT 1 /* a /* b; */ c; */", "SELECT 2 -- x; y", "SELECT 3"}},
		{"SELECT 'unclosed; SELECT 2", []string{"SELECT 'unclosed; SELECT 2"}},
	}
	for _, tc := range tests {
		if got := splitStatements(tc.sql); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitStatements(%q) = %q, want %q", tc.sql, got, tc.want)
		}
	}
}
