package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
)

// demoCommand starts a private PostgreSQL, runs a small shop workload
// against it, streams it into a folder lake and prints figures read back
// from the lake.
type demoCommand struct{}

func init() { commands["demo"] = func() command { return &demoCommand{} } }

const demoSchema = `
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, city text NOT NULL);
CREATE TABLE orders (
	id bigserial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers,
	status text NOT NULL DEFAULT 'placed',
	amount numeric(12,2) NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);`

func (c *demoCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "./lake", "folder to write the lake into")
	duration := fs.Duration("duration", 30*time.Second, "how long the workload runs")
	rate := fs.Int("rate", 50, "orders placed per second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.Default().With("component", "demo")
	tmp, err := os.MkdirTemp("", "cdclake-demo-")
	if err != nil {
		return fmt.Errorf("create temp folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	log.Info("starting a private PostgreSQL", "dir", tmp)
	pg, err := pgtest.New(tmp, pgtest.Options{})
	if err != nil {
		return fmt.Errorf("start private PostgreSQL: %w", err)
	}
	defer pg.Stop()
	if err := pg.ExecErr("postgres", "CREATE DATABASE shop"); err != nil {
		return err
	}
	if err := pg.ExecErr("shop", demoSchema); err != nil {
		return err
	}
	lakeDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	lf := lakeFlags{lake: lakeDir}
	cat, _, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()

	// the first catch-up creates the slot, so no change of the workload is missed
	o := ingest.Options{Source: pg.URL("shop"), Name: "shop"}
	first := o
	first.CatchUp = true
	if err := ingest.Run(ctx, cat, first); err != nil {
		return err
	}
	ingCtx, stopIngest := context.WithCancel(ctx)
	ingDone := make(chan error, 1)
	go func() { ingDone <- ingest.Run(ingCtx, cat, o) }()

	log.Info("running the shop workload", "duration", *duration, "orders_per_s", *rate)
	wlErr := shopWorkload(ctx, pg.URL("shop"), *duration, *rate)
	stopIngest()
	if err := <-ingDone; err != nil {
		return err
	}
	if wlErr != nil && !errors.Is(wlErr, context.Canceled) {
		return wlErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// drain what the stop left behind
	if err := ingest.Run(ctx, cat, first); err != nil {
		return err
	}
	if err := printShopFigures(ctx, cat, pg.URL("shop")); err != nil {
		return err
	}
	fmt.Printf("\nThe lake is in %s (Iceberg tables, catalog %s).\n", lakeDir, filepath.Join(lakeDir, "catalog.db"))
	return nil
}

// shopWorkload places orders at rate per second and moves older ones
// through paid, shipped and cancelled.
func shopWorkload(ctx context.Context, url string, d time.Duration, rate int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	cities := []string{"Berlin", "Lisbon", "Oslo", "Turin", "Gdansk"}
	for i := 0; i < 50; i++ {
		if _, err := conn.Exec(ctx, "INSERT INTO customers (name, city) VALUES ($1, $2)",
			fmt.Sprintf("customer %d", i), cities[i%len(cities)]); err != nil {
			return err
		}
	}
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		stmts := []string{"INSERT INTO orders (customer_id, amount) VALUES (1 + floor(random()*50)::int, round((5 + random()*200)::numeric, 2))"}
		switch rand.IntN(4) {
		case 0:
			stmts = append(stmts, "UPDATE orders SET status = 'paid', updated_at = now() WHERE id = (SELECT id FROM orders WHERE status = 'placed' ORDER BY id LIMIT 1)")
		case 1:
			stmts = append(stmts, "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = (SELECT id FROM orders WHERE status = 'paid' ORDER BY id LIMIT 1)")
		case 2:
			if rand.IntN(5) == 0 {
				stmts = append(stmts, "DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status = 'placed' ORDER BY random() LIMIT 1)")
			}
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("workload: %w", err)
			}
		}
	}
	return nil
}

// printShopFigures reads the orders changelog back from the lake, folds
// it into the current state and compares a few figures with PostgreSQL.
func printShopFigures(ctx context.Context, cat *catalog.Catalog, url string) error {
	tbl, err := cat.Iceberg().LoadTable(ctx, ingest.Ident("shop", "public", "orders"))
	if err != nil {
		return fmt.Errorf("load orders changelog: %w", err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		return fmt.Errorf("scan orders changelog: %w", err)
	}
	defer at.Release()
	type state struct {
		lsn, seq int64
		op       string
		status   string
		amount   string
	}
	latest := map[int64]state{}
	changes := 0
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(n string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(n)[0]) }
		ids, ops := col("id").(*array.Int64), col(ingest.ColOp).(*array.String)
		lsns, seqs := col(ingest.ColLSN).(*array.Int64), col(ingest.ColSeq).(*array.Int64)
		statuses, amounts := col("status").(*array.String), col("amount")
		for i := 0; i < int(rec.NumRows()); i++ {
			changes++
			s := state{lsn: lsns.Value(i), seq: seqs.Value(i), op: ops.Value(i), status: statuses.Value(i), amount: amounts.ValueStr(i)}
			if old, ok := latest[ids.Value(i)]; !ok || old.lsn < s.lsn || (old.lsn == s.lsn && old.seq < s.seq) {
				latest[ids.Value(i)] = s
			}
		}
	}
	byStatus := map[string]int{}
	for _, s := range latest {
		if s.op != ingest.OpDelete {
			byStatus[s.status]++
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT status, count(*) FROM orders GROUP BY status")
	if err != nil {
		return err
	}
	source := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return err
		}
		source[s] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Printf("\norders changelog: %d changes in the lake\n\n%-10s %8s %10s\n", changes, "status", "lake", "postgres")
	var statuses []string
	for s := range source {
		statuses = append(statuses, s)
	}
	for s := range byStatus {
		if _, ok := source[s]; !ok {
			statuses = append(statuses, s)
		}
	}
	sort.Strings(statuses)
	for _, s := range statuses {
		fmt.Printf("%-10s %8d %10d\n", s, byStatus[s], source[s])
	}
	return nil
}
