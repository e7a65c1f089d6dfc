package pgwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/query"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

const token = "s3cret-token"

// serve starts an engine over a shop lake and a wire server (SCRAM) in
// front of it; it returns the shop and the server's port.
func serve(t *testing.T) (*shoptest.Shop, int) {
	s, e := lakeEngine(t)
	return s, startServer(t, e, Options{Password: token})
}

func lakeEngine(t *testing.T) (*shoptest.Shop, *query.Engine) {
	t.Helper()
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload...)
	s.CatchUp(t)
	e, err := query.Open(context.Background(), s.Cat, query.Options{Lake: loc, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return s, e
}

// startServer serves e on a free port until the test ends.
func startServer(t *testing.T, e Engine, o Options) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(e, o).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func psqlPath(t *testing.T) string {
	if bin, err := pgtest.BinDir(); err == nil {
		if p := filepath.Join(bin, "psql"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("no psql")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// psql runs the real psql client and returns its output.
func psql(t *testing.T, port int, password string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(psqlPath(t), append([]string{"--no-psqlrc", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-U", "analyst", "-d", "lake"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=prefer")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPsql(t *testing.T) {
	s, e := lakeEngine(t)
	port := startServer(t, e, Options{Password: token})
	queries := []string{
		`SELECT status, count(*) AS orders, sum(amount) AS revenue FROM public.orders GROUP BY status ORDER BY status`,
		`SELECT id, customer_id, status, amount, created_at FROM public.orders WHERE id < 20 ORDER BY id`,
		`SELECT c.city, count(*) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id GROUP BY 1 ORDER BY 1`,
		`SELECT 1.5::float8 AS f, true AS b, NULL::text AS n, 'x' AS s`,
	}
	for _, q := range queries {
		got, err := psql(t, port, token, "-c", q)
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, got)
		}
		cmd := exec.Command(psqlPath(t), "--no-psqlrc", s.URL, "-c", q)
		want, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql on postgres: %v\n%s", err, want)
		}
		if got != string(want) {
			t.Errorf("%s\npsql on the lake:\n%s\npsql on postgres:\n%s", q, got, want)
		}
	}
	// csv output and a cancel-free error
	out, err := psql(t, port, token, "--csv", "-c", `SELECT count(*) AS n FROM public.customers`)
	if err != nil || out != "n\n20\n" {
		t.Errorf("psql --csv = %q, %v", out, err)
	}
	out, err = psql(t, port, token, "-c", `DROP VIEW public.orders`)
	if err == nil || !strings.Contains(out, "read-only") {
		t.Errorf("DROP VIEW through psql: %v\n%s", err, out)
	}
	out, err = psql(t, port, "wrong", "-c", `SELECT 1`)
	if err == nil || !strings.Contains(out, "password authentication failed") {
		t.Errorf("wrong password: %v\n%s", err, out)
	}

	t.Run("cleartext password", func(t *testing.T) {
		port := startServer(t, e, Options{Password: token, Cleartext: true})
		out, err := psql(t, port, token, "-At", "-c", `SELECT count(*) FROM public.customers`)
		if err != nil || out != "20\n" {
			t.Errorf("psql: %v: %q", err, out)
		}
		if out, err := psql(t, port, "wrong", "-c", `SELECT 1`); err == nil || !strings.Contains(out, "password authentication failed") {
			t.Errorf("wrong password: %v\n%s", err, out)
		}
	})
	t.Run("no password", func(t *testing.T) {
		port := startServer(t, e, Options{})
		if out, err := psql(t, port, "", "-At", "-c", `SELECT 1`); err != nil || out != "1\n" {
			t.Errorf("psql: %v: %q", err, out)
		}
	})
}

// TestExtendedProtocol runs pgx, which prepares statements and asks for
// binary results, against the lake and PostgreSQL.
func TestExtendedProtocol(t *testing.T) {
	s, port := serve(t)
	ctx := context.Background()
	lakeConn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://analyst:%s@127.0.0.1:%d/lake?sslmode=disable", token, port))
	if err != nil {
		t.Fatal(err)
	}
	defer lakeConn.Close(ctx)
	pgConn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pgConn.Close(ctx)
	tests := []struct {
		sql  string
		args []any
	}{
		{`SELECT id, customer_id, status, amount, created_at, updated_at FROM public.orders WHERE id > $1 AND status = $2 ORDER BY id`, []any{int64(10), "paid"}},
		{`SELECT status, count(*), sum(amount) FROM public.orders GROUP BY status ORDER BY status`, nil},
		{`SELECT id, name FROM public.customers WHERE city = $1 ORDER BY id`, []any{"Rome"}},
		{`SELECT CAST('2026-03-01' AS date) AS d, 2.5::float8 AS f, 7::int4 AS i, true AS b, 'x'::bytea AS by`, nil},
	}
	for _, tc := range tests {
		got := rowValues(t, lakeConn, tc.sql, tc.args...)
		want := rowValues(t, pgConn, tc.sql, tc.args...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nlake: %v\npostgres: %v", tc.sql, head(got), head(want))
		}
	}
	// the same prepared statement again, and one with the simple protocol
	if got := rowValues(t, lakeConn, tests[2].sql, "Paris"); len(got) == 0 {
		t.Error("no customers in Paris")
	}
	var n int64
	if err := lakeConn.QueryRow(ctx, `SELECT count(*) FROM public.orders`, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n == 0 {
		t.Errorf("simple protocol count = %d, %v", n, err)
	}
	// errors leave the connection usable
	_, err = lakeConn.Exec(ctx, `CREATE TABLE x (a int)`)
	var pge *pgconn.PgError
	if !errors.As(err, &pge) || pge.Code != "25006" {
		t.Errorf("CREATE TABLE: %v", err)
	}
	if err := lakeConn.QueryRow(ctx, `SELECT 1`).Scan(&n); err != nil || n != 1 {
		t.Errorf("after an error: %d, %v", n, err)
	}
}

func TestCancelRequest(t *testing.T) {
	_, port := serve(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://analyst:%s@127.0.0.1:%d/lake?sslmode=disable", token, port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	go func() {
		time.Sleep(500 * time.Millisecond)
		conn.PgConn().CancelRequest(context.Background())
	}()
	start := time.Now()
	_, err = conn.Exec(ctx, `SELECT count(*) FROM range(100000000) a, range(100000000) b`)
	var pge *pgconn.PgError
	if !errors.As(err, &pge) || pge.Code != "57014" {
		t.Fatalf("err = %v, want query_canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelled after %s", d)
	}
}

func rowValues(t *testing.T, conn *pgx.Conn, sql string, args ...any) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC() // lake and postgres may pick other zones for display
			}
			row[i] = fmt.Sprintf("%T %v", v, v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func head(rows [][]string) [][]string {
	if len(rows) > 5 {
		return rows[:5]
	}
	return rows
}
