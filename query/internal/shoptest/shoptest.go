// Package shoptest sets up the demo shop database and its lake for the
// query packages' tests: a throwaway PostgreSQL with the shop schema, a
// catalog, and the real ingest to move changes into the lake.
package shoptest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lake"
)

// Schema is the demo workload's schema plus tables for TOAST and
// truncate cases.
var Schema = []string{
	`CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, city text NOT NULL)`,
	`CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
		status text NOT NULL DEFAULT 'placed', amount numeric(12,2) NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
	`CREATE TABLE docs (id int PRIMARY KEY, body text, n int)`,
	`ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL`,
	`CREATE TABLE scratch (id int PRIMARY KEY, v text)`,
}

// Workload inserts, updates (also keys and TOASTed rows), deletes and
// truncates.
var Workload = []string{
	`INSERT INTO customers (name, city) SELECT 'c' || g, (ARRAY['Berlin','Paris','Rome'])[1 + g % 3] FROM generate_series(1, 20) g`,
	`INSERT INTO orders (customer_id, amount, created_at, updated_at)
		SELECT 1 + g % 20, (g * 37 % 10000) / 100.0, timestamptz '2026-03-01 00:00:00+00' + g * interval '7 minutes 13.5 seconds',
		timestamptz '2026-03-01 00:00:00+00' + g * interval '7 minutes 13.5 seconds' FROM generate_series(1, 300) g`,
	`UPDATE orders SET status = 'paid', updated_at = updated_at + interval '1 hour' WHERE id % 3 = 0`,
	`UPDATE orders SET status = 'shipped', updated_at = updated_at + interval '2 hours' WHERE id % 5 = 0`,
	`DELETE FROM orders WHERE id % 7 = 0`,
	`UPDATE orders SET id = id + 100000 WHERE id = 11`,
	`UPDATE customers SET city = 'Madrid' WHERE id = 4`,
	`INSERT INTO docs SELECT g, repeat(md5(g::text), 200), 0 FROM generate_series(1, 5) g`,
	`UPDATE docs SET n = n + 1`,
	`INSERT INTO scratch VALUES (1, 'a'), (2, 'b'), (3, 'c')`,
	`TRUNCATE scratch`,
	`INSERT INTO scratch VALUES (4, 'd')`,
}

// Shop is a source database and the catalog of its lake.
type Shop struct {
	PG  *pgtest.Cluster
	URL string
	Cat *catalog.Catalog
	DB  string
}

// New creates database db with the shop schema on pg and a catalog for
// the lake at warehouse, and runs a first catch-up (creates the slot).
func New(t testing.TB, pg *pgtest.Cluster, db, warehouse string, props map[string]string) *Shop {
	t.Helper()
	pg.CreateDB(t, db)
	pg.Exec(t, db, Schema...)
	return Attach(t, pg, db, warehouse, props)
}

// Attach opens a catalog for the lake at warehouse and runs a first
// catch-up of the existing database db (initial snapshot, slot).
func Attach(t testing.TB, pg *pgtest.Cluster, db, warehouse string, props map[string]string) *Shop {
	t.Helper()
	url := pg.URL(db)
	cat, err := catalog.Open(context.Background(), catalog.Options{
		URL: filepath.Join(t.TempDir(), "catalog.db"), Warehouse: warehouse, Props: props})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	s := &Shop{PG: pg, URL: url, Cat: cat, DB: db}
	s.CatchUp(t)
	return s
}

// CatchUp runs the real ingest until everything committed is in the lake.
func (s *Shop) CatchUp(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := ingest.Run(ctx, s.Cat, ingest.Options{Source: s.URL, CatchUp: true}); err != nil {
		t.Fatalf("ingest: %v", err)
	}
}

// Stream runs the ingest until ctx is cancelled.
func (s *Shop) Stream(ctx context.Context) error {
	return ingest.Run(ctx, s.Cat, ingest.Options{Source: s.URL})
}

// FileLake returns a fresh folder lake's location.
func FileLake(t testing.TB) lake.Location {
	t.Helper()
	loc, err := lake.Parse(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// PGRows runs q on PostgreSQL and returns its text rows ("NULL" for null).
func PGRows(t testing.TB, url, q string) [][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.PgConn().Exec(ctx, q).ReadAll()
	if err != nil {
		t.Fatalf("postgres: %s: %v", q, err)
	}
	var out [][]string
	for _, r := range res[0].Rows {
		row := make([]string, len(r))
		for i, v := range r {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = string(v)
			}
		}
		out = append(out, row)
	}
	return out
}
