package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// kpiQueries are KPI-style questions, valid SQL for DuckDB and PostgreSQL.
var kpiQueries = []struct{ name, sql string }{
	{"orders by status", `SELECT status, count(*), sum(amount) FROM public.orders GROUP BY status ORDER BY status`},
	{"revenue per day", `SELECT date_trunc('day', created_at) AS day, count(*), sum(amount) FROM public.orders WHERE status <> 'placed' GROUP BY 1 ORDER BY 1`},
	{"revenue per city (join)", `SELECT c.city, count(*), sum(o.amount) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id GROUP BY 1 ORDER BY 1`},
	{"filtered count", `SELECT count(*) FROM public.orders WHERE status = 'placed' AND amount > 500`},
}

// shopLoad creates the query scenario's customers (10,000) and orders.
func shopLoad(orders int64) []string {
	return []string{
		`CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, city text NOT NULL)`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL DEFAULT 'placed',
			amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO customers SELECT g, 'c' || g, (ARRAY['Berlin','Paris','Rome','Madrid','Lisbon','Oslo','Vienna','Prague'])[1 + g % 8]
			FROM generate_series(1, 10000) g`,
		fmt.Sprintf(`INSERT INTO orders SELECT g, 1 + (g * 7919) %% 10000, (ARRAY['placed','paid','shipped'])[1 + (g * 31) %% 3],
			((g * 7877) %% 100000) / 100.0, timestamptz '2026-01-01 00:00:00+00' + (g %% 7776000) * interval '1 second',
			timestamptz '2026-01-01 00:00:00+00' + (g %% 7776000) * interval '1 second' FROM generate_series(1::bigint, %d) g`, orders),
		`VACUUM ANALYZE customers`, `VACUUM ANALYZE orders`,
	}
}

// QueryTime is one KPI query timed on PostgreSQL and on the lake, each
// the median of warm runs.
type QueryTime struct {
	Name, SQL string
	Rows      int           // rows of the answer, equal on both sides
	PG        time.Duration // PostgreSQL
	Changelog time.Duration // lake, before compaction: the views read the changelog only
	Lake      time.Duration // lake, snapshot table plus the tail after its watermark
}

// QueryReport is the outcome of the query scenario.
type QueryReport struct {
	Orders, Tail                        int64 // orders; tail: updates after the snapshot's watermark
	Load, Ingest, Compaction, TailCatch time.Duration
	Queries                             []QueryTime
}

// Query loads Rows orders (default 10M) into PostgreSQL, moves them into
// the lake with the real ingest (initial snapshot), compacts them into
// snapshot tables, updates 1% of the orders after the watermark and
// catches up, then asks the KPI queries of both: the lake through the
// query engine's views, PostgreSQL directly. Every answer of the lake
// must equal PostgreSQL's.
func Query(ctx context.Context, o Options) (*QueryReport, error) {
	o.Rows = def(o.Rows, 10_000_000)
	e, err := newEnv(ctx, map[string]string{"shared_buffers": "'1GB'", "max_wal_size": "'8GB'", "work_mem": "'64MB'",
		"max_parallel_workers_per_gather": "2"})
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep := &QueryReport{Orders: o.Rows, Tail: o.Rows / 100}
	start := time.Now()
	if err := e.pg.ExecErr("bench", shopLoad(o.Rows)...); err != nil {
		return nil, err
	}
	rep.Load = time.Since(start)
	ing := ingest.Options{Source: e.url(), Name: "bench", CatchUp: true, Logger: e.log}
	start = time.Now()
	if err := ingest.Run(ctx, e.cat, ing); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	rep.Ingest = time.Since(start)

	loc, err := lake.Parse(filepath.Join(e.dir, "lake"))
	if err != nil {
		return nil, err
	}
	eng, err := query.Open(ctx, e.cat, query.Options{Lake: loc, MemoryLimit: "4GB", MaxRows: o.Rows + 1_000_000,
		MaxBytes: 8 << 30, Timeout: 10 * time.Minute, Logger: e.log})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	lakeRun := func(sql string) func() error {
		return func() error {
			res, err := eng.Query(ctx, sql)
			if err == nil {
				res.Release()
			}
			return err
		}
	}
	for _, q := range kpiQueries {
		d, err := median(3, lakeRun(q.sql))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
		rep.Queries = append(rep.Queries, QueryTime{Name: q.name, SQL: q.sql, Changelog: d})
	}

	// the steady state: snapshot tables made by compaction and a tail of
	// changes after their watermark
	start = time.Now()
	results, err := compact.New(e.cat, compact.Options{Logger: e.log}).RunOnce(ctx)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	rep.Compaction = time.Since(start)
	for _, r := range results {
		if r.LSN == 0 {
			return nil, fmt.Errorf("compaction wrote no snapshot of %s (%s)", r.Table, r.Skipped)
		}
	}
	if len(results) != 2 {
		return nil, fmt.Errorf("compaction compacted %d tables, want customers and orders", len(results))
	}
	if err := e.pg.ExecErr("bench", `UPDATE orders SET status = 'shipped', updated_at = now() WHERE id % 100 = 0`); err != nil {
		return nil, err
	}
	start = time.Now()
	if err := ingest.Run(ctx, e.cat, ing); err != nil {
		return nil, fmt.Errorf("ingest the tail: %w", err)
	}
	rep.TailCatch = time.Since(start)

	conn, err := pgx.Connect(ctx, e.url())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	for i := range rep.Queries {
		q := &rep.Queries[i]
		want, err := pgRows(ctx, conn, q.SQL)
		if err != nil {
			return nil, fmt.Errorf("%s on PostgreSQL: %w", q.Name, err)
		}
		got, err := lakeRows(ctx, eng, q.SQL)
		if err != nil {
			return nil, fmt.Errorf("%s on the lake: %w", q.Name, err)
		}
		if !slices.Equal(got, want) {
			return nil, fmt.Errorf("%s: the lake answers (%d rows)\n%s\nPostgreSQL answers (%d rows)\n%s",
				q.Name, len(got), head(got), len(want), head(want))
		}
		q.Rows = len(got)
		if q.Lake, err = median(5, lakeRun(q.SQL)); err != nil {
			return nil, err
		}
		q.PG, err = median(5, func() error {
			_, err := conn.PgConn().Exec(ctx, q.SQL).ReadAll()
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// pgRows runs q on PostgreSQL and returns its rows as text, columns
// joined by " | " ("NULL" for null).
func pgRows(ctx context.Context, conn *pgx.Conn, q string) ([]string, error) {
	res, err := conn.PgConn().Exec(ctx, q).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range res[0].Rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = "NULL"
			if v != nil {
				row[i] = string(v)
			}
		}
		out = append(out, strings.Join(row, " | "))
	}
	return out, nil
}

// lakeRows runs q on the lake and returns its rows as pgRows does.
func lakeRows(ctx context.Context, eng *query.Engine, q string) ([]string, error) {
	res, err := eng.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer res.Release()
	var out []string
	for _, rec := range res.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				v, ok := query.Text(rec.Column(c), i)
				if !ok {
					v = "NULL"
				}
				row[c] = v
			}
			out = append(out, strings.Join(row, " | "))
		}
	}
	return out, nil
}

func head(rows []string) string {
	if len(rows) > 8 {
		return "  " + strings.Join(rows[:8], "\n  ") + fmt.Sprintf("\n  ... %d more", len(rows)-8)
	}
	return "  " + strings.Join(rows, "\n  ")
}

// median runs fn once to warm up, then n times, and returns the median.
func median(n int, fn func() error) (time.Duration, error) {
	if err := fn(); err != nil {
		return 0, err
	}
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2], nil
}
