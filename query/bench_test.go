package query

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// benchQueries are KPI-style questions, valid SQL for DuckDB and PostgreSQL.
var benchQueries = []struct{ name, sql string }{
	{"orders by status", `SELECT status, count(*), sum(amount) FROM public.orders GROUP BY status ORDER BY status`},
	{"revenue per day", `SELECT date_trunc('day', created_at) AS day, count(*), sum(amount) FROM public.orders WHERE status <> 'placed' GROUP BY 1 ORDER BY 1`},
	{"revenue per city (join)", `SELECT c.city, count(*), sum(o.amount) FROM public.orders o JOIN public.customers c ON c.id = o.customer_id GROUP BY 1 ORDER BY 1`},
	{"filtered count", `SELECT count(*) FROM public.orders WHERE status = 'placed' AND amount > 500`},
}

// TestBenchQuery compares KPI queries on the lake with the same SQL on the
// source PostgreSQL, and measures commit-to-visible freshness under a
// steady write load. It runs only with CDCLAKE_BENCH_QUERY=1 (rows from
// CDCLAKE_BENCH_ROWS, default 10,000,000) and logs the tables of
// docs/benchmarks.md:
//
//	CDCLAKE_BENCH_QUERY=1 go test -tags duckdb_arrow -run TestBenchQuery -v -timeout 60m ./query/
func TestBenchQuery(t *testing.T) {
	if os.Getenv("CDCLAKE_BENCH_QUERY") == "" {
		t.Skip("set CDCLAKE_BENCH_QUERY=1 to run the query benchmark")
	}
	rows := 10_000_000
	if s := os.Getenv("CDCLAKE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{Settings: map[string]string{
		"shared_buffers": "1GB", "max_wal_size": "8GB", "work_mem": "64MB", "max_parallel_workers_per_gather": "2"}})
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", shoptest.Schema[:2]...)
	start := time.Now()
	pg.Exec(t, "shop",
		`INSERT INTO customers (name, city) SELECT 'c' || g, (ARRAY['Berlin','Paris','Rome','Madrid','Lisbon','Oslo','Vienna','Prague'])[1 + g % 8] FROM generate_series(1, 10000) g`,
		fmt.Sprintf(`INSERT INTO orders (customer_id, status, amount, created_at, updated_at)
			SELECT 1 + (g * 7919) %% 10000, (ARRAY['placed','paid','shipped'])[1 + (g * 31) %% 3], ((g * 7877) %% 100000) / 100.0,
			timestamptz '2026-01-01 00:00:00+00' + (g %% 7776000) * interval '1 second',
			timestamptz '2026-01-01 00:00:00+00' + (g %% 7776000) * interval '1 second' FROM generate_series(1::bigint, %d) g`, rows),
		`VACUUM ANALYZE customers`, `VACUUM ANALYZE orders`)
	t.Logf("loaded %d orders into PostgreSQL in %s", rows, time.Since(start).Round(time.Second))

	loc := shoptest.FileLake(t)
	start = time.Now()
	s := shoptest.Attach(t, pg, "shop", loc.URL(), nil) // initial snapshot through the real ingest
	t.Logf("ingest (initial snapshot) took %s", time.Since(start).Round(time.Second))
	big := Options{Lake: loc, MemoryLimit: "4GB", MaxRows: int64(rows) + 1_000_000, MaxBytes: 8 << 30, Timeout: 10 * time.Minute}
	e := openEngine(t, s.Cat, big)

	report := &strings.Builder{}
	fmt.Fprintf(report, "| query | PostgreSQL | lake, changelog only | lake, snapshot + 1%% tail | ratio lake/PG (snapshot) |\n|---|---|---|---|---|\n")
	changelogOnly := map[string]time.Duration{}
	for _, q := range benchQueries {
		changelogOnly[q.name] = median(t, 3, func() error {
			res, err := e.Query(ctx, q.sql)
			if err == nil {
				res.Release()
			}
			return err
		})
	}
	// the steady state: a snapshot table (made as compaction would) and a
	// tail of changes after its watermark
	start = time.Now()
	makeSnapshot(t, e, s, "orders", `SELECT * FROM public.orders`)
	makeSnapshot(t, e, s, "customers", `SELECT * FROM public.customers`)
	t.Logf("snapshot tables built in %s", time.Since(start).Round(time.Second))
	pg.Exec(t, "shop", `UPDATE orders SET status = 'shipped', updated_at = now() WHERE id % 100 = 0`)
	s.CatchUp(t)
	for _, q := range benchQueries {
		want := shoptest.PGRows(t, url, q.sql)
		res, err := e.Query(ctx, q.sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := resultRows(res); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: lake and PostgreSQL differ:\n%v\n%v", q.name, head(got), head(want))
		}
		res.Release()
		lakeT := timeLake(t, e, q.sql)
		pgT := timePG(t, url, q.sql)
		fmt.Fprintf(report, "| %s | %s | %s | %s | %.2f |\n", q.name, ms(pgT), ms(changelogOnly[q.name]), ms(lakeT),
			float64(lakeT)/float64(pgT))
	}
	t.Logf("median of 5 warm runs (3 for changelog only), %d orders:\n%s", rows, report)
	benchFreshness(t, e, s, url)
}

// benchFreshness commits one order every 50 ms for a minute while streaming
// ingest runs, and polls the lake for each one.
func benchFreshness(t *testing.T, e *Engine, s *shoptest.Shop, url string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var mu sync.Mutex
	committed := map[int64]time.Time{}
	var lat []time.Duration
	stop := time.Now().Add(time.Minute)
	var first int64
	if err := conn.QueryRow(context.Background(), `SELECT max(id) FROM orders`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		seen := first
		for time.Now().Before(stop.Add(5 * time.Second)) {
			qs := time.Now()
			res, err := e.Query(context.Background(), fmt.Sprintf(`SELECT max(id) FROM public.orders WHERE id > %d`, first))
			if err != nil {
				t.Error(err)
				return
			}
			now := time.Now()
			if os.Getenv("CDCLAKE_BENCH_DEBUG") != "" && now.Sub(qs) > 300*time.Millisecond {
				t.Logf("%s: slow poll %s", now.Format("15:04:05.000"), now.Sub(qs))
			}
			v, ok := Text(res.Records[0].Column(0), 0)
			res.Release()
			if !ok {
				continue
			}
			id, _ := strconv.ParseInt(v, 10, 64)
			mu.Lock()
			for ; seen < id; seen++ {
				if c, ok := committed[seen+1]; ok {
					lat = append(lat, now.Sub(c))
				}
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	for time.Now().Before(stop) {
		<-tick.C
		var id int64
		if err := conn.QueryRow(context.Background(),
			`INSERT INTO orders (customer_id, amount) VALUES (1 + (random() * 9999)::int, 9.99) RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		committed[id] = time.Now()
		mu.Unlock()
	}
	tick.Stop()
	<-pollDone
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		t.Fatal("no commit became visible")
	}
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	t.Logf("commit-to-visible over %d commits (20/s for 1 min, streaming ingest, poll every 20 ms + query time): p50 %s, p99 %s, max %s",
		len(lat), pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

func timeLake(t *testing.T, e *Engine, q string) time.Duration {
	return median(t, 5, func() error {
		res, err := e.Query(context.Background(), q)
		if err == nil {
			res.Release()
		}
		return err
	})
}

func timePG(t *testing.T, url, q string) time.Duration {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	return median(t, 5, func() error {
		_, err := conn.PgConn().Exec(context.Background(), q).ReadAll()
		return err
	})
}

// median runs fn once to warm up, then n times, and returns the median.
func median(t *testing.T, n int, fn func() error) time.Duration {
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	var ds []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
