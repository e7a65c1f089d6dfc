package query

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

func TestLakeMatchesPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload...)
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	compare(t, e, s.URL, comparisons...)

	t.Run("changelog view", func(t *testing.T) {
		res, err := e.Query(context.Background(),
			`SELECT _cdc_op, count(*) FROM public.docs__changes GROUP BY 1 ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		got := resultRows(res)
		if len(got) != 2 || got[0][0] != "c" || got[0][1] != "5" || got[1][0] != "u" || got[1][1] != "5" {
			t.Errorf("docs changes = %v, want 5 c and 5 u", got)
		}
		un, err := e.Query(context.Background(), `SELECT count(*) FROM public.docs__changes WHERE list_contains(_cdc_unchanged, 'body')`)
		if err != nil {
			t.Fatal(err)
		}
		defer un.Release()
		if n := resultRows(un)[0][0]; n != "5" {
			t.Errorf("%s updates with an unchanged TOAST body, want 5 (the test would not cover unchanged columns)", n)
		}
	})

	t.Run("three-part names and freshness", func(t *testing.T) {
		res, err := e.Query(context.Background(), `SELECT count(*) FROM shop.public.orders`)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		want := shoptest.PGRows(t, s.URL, `SELECT count(*) FROM public.orders`)
		if got := resultRows(res); got[0][0] != want[0][0] {
			t.Errorf("count = %s, want %s", got[0][0], want[0][0])
		}
		src, err := s.Cat.Source(context.Background(), "shop")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Freshness) != 1 || res.Freshness[0].LSN != src.LSN || !res.Freshness[0].CommitTime.Equal(src.CommitTime) {
			t.Errorf("freshness = %+v, want watermark %d at %s", res.Freshness, src.LSN, src.CommitTime)
		}
	})

	t.Run("schema change", func(t *testing.T) {
		pg.Exec(t, "shop", `ALTER TABLE customers ADD COLUMN tier text`, `UPDATE customers SET tier = 'gold' WHERE id <= 3`)
		s.CatchUp(t)
		compare(t, e, s.URL, `SELECT id, name, city, tier FROM public.customers ORDER BY id`)
	})
}

func TestFreshWithoutCompaction(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload[:2]...)
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	compare(t, e, s.URL, `SELECT count(*) FROM public.orders`)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest: %v", err)
		}
	}()
	for i := 0; i < 3; i++ {
		var id int64
		if err := pg.QueryRow("shop", `INSERT INTO orders (customer_id, amount) VALUES (1, 12.34) RETURNING id`, &id); err != nil {
			t.Fatal(err)
		}
		committed := time.Now()
		for {
			res, err := e.Query(context.Background(), `SELECT count(*) FROM public.orders WHERE id = $1`, id)
			if err != nil {
				t.Fatal(err)
			}
			n := resultRows(res)[0][0]
			res.Release()
			if n == "1" {
				t.Logf("order %d visible %s after commit", id, time.Since(committed).Round(time.Millisecond))
				break
			}
			if time.Since(committed) > 10*time.Second {
				t.Fatalf("order %d not visible 10 s after commit", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestRejected(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc, Timeout: time.Second})
	for _, q := range []string{
		`COPY (SELECT 1) TO '/tmp/cdclake-copy.csv'`,
		`ATTACH '/tmp/cdclake-attach.db' AS x`,
		`ATTACH ':memory:' AS x`,
		`INSTALL httpfs`,
		`LOAD httpfs`,
		`SET enable_external_access = true`,
		`RESET lock_configuration`,
		`CREATE TABLE x (a int)`,
		`CREATE VIEW x AS SELECT 1`,
		`DROP VIEW public.orders`,
		`SELECT 1; SELECT 2`,
		`SELECT 1; DROP VIEW public.orders`,
		`PRAGMA enable_external_access`,
		`CALL pragma_version()`,
		`EXPORT DATABASE '/tmp/cdclake-export'`,
		`SELECT * FROM read_csv('/etc/passwd')`,
		`SELECT * FROM read_text('/etc/passwd')`,
		`SELECT * FROM read_text('` + loc.Path + `/../../../../etc/passwd')`,
		`SELECT * FROM glob('/etc/*')`,
		`SELECT * FROM read_parquet('https://example.com/x.parquet')`,
		`SELECT * FROM query('CREATE TABLE y (a int)')`,
		`SELECT set_config('a', 'b', false)`,
	} {
		t.Run(q, func(t *testing.T) {
			res, err := e.Query(context.Background(), q)
			if err == nil {
				res.Release()
				t.Fatalf("%s ran", q)
			}
			t.Logf("%v", err)
		})
	}
	for _, q := range []string{
		`VALUES (1), (2)`,
		`FROM public.orders LIMIT 1`,
		`WITH x AS (SELECT 1 AS a) SELECT a FROM x`,
		`SELECT 1;`,
		"SELECT 1 -- trailing comment",
		`(SELECT 1) UNION ALL (SELECT 2)`,
	} {
		res, err := e.Query(context.Background(), q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		res.Release()
	}
	res, err := e.Query(context.Background(), `SELECT current_setting('enable_external_access'), current_setting('lock_configuration')`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if got := resultRows(res)[0]; got[0] != "f" || got[1] != "t" {
		t.Errorf("settings after the attempts = %v", got)
	}
}

func TestTimeoutCancelsRunawayQuery(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc, Timeout: 500 * time.Millisecond, MaxRows: 10})
	start := time.Now()
	_, err := e.Query(context.Background(), `SELECT count(*) FROM range(100000000) a, range(100000000) b`)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled after %s", d)
	}
	_, err = e.Query(context.Background(), `SELECT * FROM range(100)`)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10 rows") {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
	// the engine still answers
	res, err := e.Query(context.Background(), `SELECT 42`)
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
}

// TestMergeWithSnapshotTable builds snapshot tables by hand, following the
// compaction contract, and checks the merge of snapshot and changelog.
func TestMergeWithSnapshotTable(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload...)
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	// a ghost row only the snapshot has proves the snapshot is read
	makeSnapshot(t, e, s, "orders", `SELECT * FROM public.orders UNION ALL
		SELECT 999999, 1, 'ghost', 1.00::DECIMAL(12,2), TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-01-01 00:00:00+00', 1`)
	makeSnapshot(t, e, s, "customers", `SELECT * FROM public.customers`)
	makeSnapshot(t, e, s, "docs", `SELECT * FROM public.docs`)
	makeSnapshot(t, e, s, "scratch", `SELECT * FROM public.scratch`)
	pg.Exec(t, "shop",
		`UPDATE orders SET status = 'shipped', updated_at = updated_at + interval '1 day' WHERE id % 4 = 0`,
		`DELETE FROM orders WHERE id % 9 = 0`,
		`INSERT INTO orders (customer_id, amount, created_at, updated_at) VALUES (2, 99.99, '2026-03-05 10:00:00+00', '2026-03-05 10:00:00+00')`,
		`UPDATE orders SET id = 200000 WHERE id = 13`,
		`UPDATE customers SET city = 'Lisbon' WHERE id IN (1, 5)`,
		`UPDATE docs SET n = n + 10 WHERE id <= 2`, // body unchanged: comes from the snapshot
		`TRUNCATE scratch`, `INSERT INTO scratch VALUES (9, 'z')`)
	s.CatchUp(t)
	res, err := e.Query(context.Background(), `SELECT status FROM public.orders WHERE id = 999999`)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultRows(res); len(got) != 1 || got[0][0] != "ghost" {
		t.Fatalf("ghost row = %v: the snapshot table is not read", got)
	}
	res.Release()
	var qs []string
	for _, q := range comparisons {
		sub := "(SELECT * FROM public.orders WHERE id <> 999999)"
		q = strings.Replace(q, "public.orders o ", sub+" o ", 1)
		qs = append(qs, strings.Replace(q, "FROM public.orders", "FROM "+sub+" AS o0", 1))
	}
	compare(t, e, s.URL, qs...)
}

// TestSeveralSources: every table has a three-part name; a schema.table
// that two sources share has no two-part name.
func TestSeveralSources(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	shop := shoptest.New(t, pg, "shop", loc.URL(), nil)
	crmURL := pg.CreateDB(t, "crm")
	pg.Exec(t, "crm", `CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, city text NOT NULL)`)
	crm := &shoptest.Shop{PG: pg, URL: crmURL, Cat: shop.Cat, DB: "crm"}
	crm.CatchUp(t)
	pg.Exec(t, "shop", shoptest.Workload[:2]...)
	pg.Exec(t, "crm", `INSERT INTO customers VALUES (1, 'x', 'Oslo'), (2, 'y', 'Bergen')`)
	shop.CatchUp(t)
	crm.CatchUp(t)
	e := openEngine(t, shop.Cat, Options{Lake: loc})
	ctx := context.Background()
	count := func(q string) (string, error) {
		res, err := e.Query(ctx, q)
		if err != nil {
			return "", err
		}
		defer res.Release()
		return resultRows(res)[0][0], nil
	}
	for q, want := range map[string]string{
		`SELECT count(*) FROM shop.public.customers`:                                                    "20",
		`SELECT count(*) FROM crm.public.customers`:                                                     "2",
		`SELECT count(*) FROM public.orders`:                                                            "300",
		`SELECT count(*) FROM shop.public.orders o JOIN crm.public.customers c ON c.id = o.customer_id`: "30",
	} {
		if got, err := count(q); err != nil || got != want {
			t.Errorf("%s = %s, %v; want %s", q, got, err, want)
		}
	}
	if _, err := count(`SELECT count(*) FROM public.customers`); err == nil {
		t.Error("public.customers is ambiguous but answered")
	}
	res, err := e.Query(ctx, `SELECT count(*) FROM shop.public.orders o JOIN crm.public.customers c ON c.id = o.customer_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if len(res.Freshness) != 2 || res.Freshness[0].Source != "crm" || res.Freshness[1].Source != "shop" {
		t.Errorf("freshness = %+v, want crm and shop", res.Freshness)
	}
}

// TestDescribeMatchesResult: the types Describe announces are the types
// the result then has (the wire protocol relies on it).
func TestDescribeMatchesResult(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload[:2]...)
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	q := `SELECT true AS b, 1::TINYINT AS i1, 1::SMALLINT AS i2, 1::INTEGER AS i4, 1::BIGINT AS i8, 1::HUGEINT AS hi,
		1::UTINYINT AS u1, 1::USMALLINT AS u2, 1::UINTEGER AS u4, 1::UBIGINT AS u8, 1.5::FLOAT AS f4, 1.5::DOUBLE AS f8,
		1.5::DECIMAL(12,2) AS d, 'x' AS s, 'x'::BLOB AS bl, DATE '2026-01-02' AS dt, TIME '10:11:12' AS tm,
		TIMESTAMP '2026-01-02 03:04:05' AS ts, TIMESTAMPTZ '2026-01-02 03:04:05+00' AS tz, [1, 2] AS l, {'a': 1} AS st,
		INTERVAL 1 DAY AS iv, uuid() AS u, count(*) AS n, sum(amount), max(created_at) FROM public.orders WHERE id < $1`
	d, err := e.Describe(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Query(context.Background(), q, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if len(d.Params) != 1 || d.Params[0] != "bigint" {
		t.Errorf("params = %v", d.Params)
	}
	if len(d.Columns) != res.Schema.NumFields() {
		t.Fatalf("described %d columns, got %d", len(d.Columns), res.Schema.NumFields())
	}
	for i, f := range res.Schema.Fields() {
		if c := d.Columns[i]; c.Name != f.Name || c.Type != TypeName(f.Type) {
			t.Errorf("column %d described as %s %s, result has %s %s (%s)", i, c.Name, c.Type, f.Name, TypeName(f.Type), f.Type)
		}
	}
	t.Logf("%v", resultRows(res))
}

// TestMergeWithCompaction runs the real compactor: the views over its
// snapshot tables and the changes after them answer as PostgreSQL does.
func TestMergeWithCompaction(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", shoptest.Schema...)
	pg.Exec(t, "shop", shoptest.Workload[:2]...) // rows before the first ingest: initial copy
	s := shoptest.Attach(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload[2:]...)
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	compactAll(t, s)
	compare(t, e, s.URL, comparisons...)
	pg.Exec(t, "shop",
		`UPDATE orders SET status = 'shipped', updated_at = updated_at + interval '1 day' WHERE id % 4 = 0`,
		`DELETE FROM orders WHERE id % 9 = 0`,
		`UPDATE docs SET n = n + 10 WHERE id <= 2`,
		`TRUNCATE scratch`, `INSERT INTO scratch VALUES (9, 'z')`)
	s.CatchUp(t)
	compare(t, e, s.URL, comparisons...) // snapshot + tail
	compactAll(t, s)
	compare(t, e, s.URL, comparisons...)
}

func compactAll(t *testing.T, s *shoptest.Shop) {
	t.Helper()
	res, err := compact.New(s.Cat, compact.Options{}).RunOnce(context.Background())
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if len(res) == 0 {
		t.Fatal("compaction did nothing")
	}
}
