package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
)

const querySchema = `CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, city text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
	status text NOT NULL DEFAULT 'placed', amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`

var queryWorkload = []string{
	`INSERT INTO customers (name, city) SELECT 'c' || g, (ARRAY['Berlin','Paris','Rome'])[1 + g % 3] FROM generate_series(1, 10) g`,
	`INSERT INTO orders (customer_id, amount, created_at) SELECT 1 + g % 10, g * 1.25, now() - g * interval '20 minutes' FROM generate_series(1, 100) g`,
	`UPDATE orders SET status = 'paid' WHERE id % 3 = 0`,
	`UPDATE orders SET status = 'shipped' WHERE id % 4 = 0`,
	`DELETE FROM orders WHERE id % 10 = 0`,
}

// shopLake streams a small shop database into a lake with the ingest
// command and returns the source URL.
func shopLake(t *testing.T, pg *pgtest.Cluster, db string, lakeArgs ...string) string {
	t.Helper()
	url := pg.CreateDB(t, db)
	pg.Exec(t, db, querySchema)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"ingest", "--source", url, "--catch-up"}, lakeArgs...)
	if err := run(ctx, args); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, db, queryWorkload...)
	if err := run(ctx, args); err != nil {
		t.Fatal(err)
	}
	return url
}

func runQuery(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := (&queryCommand{out: &out, errOut: &errOut}).Run(ctx, args)
	return out.String(), errOut.String(), err
}

func TestQueryCommand(t *testing.T) {
	pg := pgtest.Start(t)
	dir := t.TempDir()
	shopLake(t, pg, "shop", "--lake", dir)
	const q = `SELECT status, count(*), sum(amount) FROM public.orders GROUP BY status ORDER BY status`
	var want strings.Builder
	want.WriteString("status,count,sum\n")
	rows, err := pgRowsText(pg, "shop", q)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		want.WriteString(strings.Join(r, ",") + "\n")
	}

	out, _, err := runQuery(t, "--lake", dir, "--format", "csv", q)
	if err != nil {
		t.Fatal(err)
	}
	if out != want.String() {
		t.Errorf("csv:\n%s\nwant:\n%s", out, want.String())
	}

	out, errOut, err := runQuery(t, "--lake", dir, q)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, " status  | count |   sum   \n---------+-------+---------\n paid    |    23 |") || !strings.Contains(out, "(3 rows)") || !strings.Contains(errOut, "freshness: shop lsn=") {
		t.Errorf("table:\n%s\n%s", out, errOut)
	}

	out, _, err = runQuery(t, "--lake", dir, "--format", "json", `SELECT count(*) AS n FROM shop.public.customers`)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rows      [][]any `json:"rows"`
		Freshness []struct {
			Source string `json:"source"`
			LSN    string `json:"lsn"`
		} `json:"freshness"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Rows) != 1 || doc.Rows[0][0] != float64(10) || len(doc.Freshness) != 1 || doc.Freshness[0].Source != "shop" {
		t.Errorf("json = %s", out)
	}

	for _, bad := range []string{`DELETE FROM public.orders`, `SELECT * FROM read_text('/etc/passwd')`} {
		if _, _, err := runQuery(t, "--lake", dir, bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestQueryCommandS3(t *testing.T) {
	pg := pgtest.Start(t)
	for i, srv := range s3test.All(t) {
		t.Run(srv.Name, func(t *testing.T) {
			srv.Env(t)
			srv.CreateBucket(t, "lake")
			catPath := filepath.Join(t.TempDir(), "catalog.db")
			lakeArgs := []string{"--lake", "s3://lake/prod", "--catalog", catPath}
			db := fmt.Sprintf("shop%d", i)
			shopLake(t, pg, db, lakeArgs...)
			const q = `SELECT c.city, count(*), sum(o.amount) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id GROUP BY 1 ORDER BY 1`
			rows, err := pgRowsText(pg, db, q)
			if err != nil {
				t.Fatal(err)
			}
			want := "city,count,sum\n"
			for _, r := range rows {
				want += strings.Join(r, ",") + "\n"
			}
			out, _, err := runQuery(t, append(lakeArgs, "--cache-dir", t.TempDir(), "--format", "csv", q)...)
			if err != nil {
				t.Fatal(err)
			}
			if out != want {
				t.Errorf("csv:\n%s\nwant:\n%s", out, want)
			}
		})
	}
}

// pgRowsText runs q on PostgreSQL and returns its rows as text.
func pgRowsText(pg *pgtest.Cluster, db, q string) ([][]string, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URL(db))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	res, err := conn.PgConn().Exec(ctx, q).ReadAll()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, r := range res[0].Rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = string(v)
		}
		out = append(out, row)
	}
	return out, nil
}
