package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/demo"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// demoCommand starts a private PostgreSQL with three service databases,
// runs a shop workload across them, streams all three into a folder lake,
// compacts, and prints KPIs that join the services, read from the lake.
type demoCommand struct {
	out io.Writer // the terminal: progress, KPI tables, the final check (default os.Stdout)
}

func init() { commands["demo"] = func() command { return &demoCommand{} } }

// demoKPIs join the three services; they are printed while the demo runs.
var demoKPIs = []struct{ title, sql string }{
	{"orders by status (orders service)", `SELECT status, count(*) AS orders, sum(amount) AS amount
		FROM orders.public.orders GROUP BY status ORDER BY status`},
	{"revenue by city: captured payments joined to orders and customers", `SELECT c.city, count(*) AS paid_orders, sum(p.amount) AS revenue
		FROM payments.public.payments p JOIN orders.public.orders o ON o.id = p.order_id
		JOIN orders.public.customers c ON c.id = o.customer_id
		WHERE p.status = 'captured' GROUP BY c.city ORDER BY revenue DESC`},
	{"payment to shipment: orders with both, and the median wait", `SELECT count(*) AS shipped_orders,
		round(median(epoch(s.shipped_at) - epoch(p.created_at)), 2) AS median_seconds_paid_to_shipped
		FROM payments.public.payments p JOIN shipping.public.shipments s ON s.order_id = p.order_id`},
	{"paid but not shipped (a check the business watches)", `SELECT count(*) AS waiting
		FROM orders.public.orders o LEFT JOIN shipping.public.shipments s ON s.order_id = o.id
		WHERE o.status = 'paid' AND s.id IS NULL`},
}

func (c *demoCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "./lake", "folder to write the lake into")
	duration := fs.Duration("duration", 40*time.Second, "how long the workload runs")
	rate := fs.Int("rate", 40, "orders placed per second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := c.out
	if out == nil {
		out = os.Stdout
	}
	lakeDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(lakeDir, 0o755); err != nil {
		return fmt.Errorf("create lake folder: %w", err)
	}
	// the terminal is for the story; the log lines of the ingesters and
	// the compactor go to a file, warnings and errors to stderr as well
	logPath := filepath.Join(lakeDir, "demo.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	defer logFile.Close()
	logger := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: logLevel()}),
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	prevLogger := slog.Default()
	slog.SetDefault(logger)
	defer slog.SetDefault(prevLogger)
	fmt.Fprintf(out, "logs: %s\n", logPath)

	log := logger.With("component", "demo")
	tmp, err := os.MkdirTemp("", "cdclake-demo-")
	if err != nil {
		return fmt.Errorf("create temp folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(out, "starting a private PostgreSQL with the databases %s\n", strings.Join(demo.Services, ", "))
	log.Info("starting a private PostgreSQL", "dir", tmp)
	pg, err := pgtest.New(tmp, pgtest.Options{})
	if err != nil {
		return fmt.Errorf("start private PostgreSQL: %w", err)
	}
	defer pg.Stop()
	for _, s := range demo.Services {
		if err := pg.ExecErr("postgres", "CREATE DATABASE "+s); err != nil {
			return err
		}
		if err := pg.ExecErr(s, demo.Schemas[s]); err != nil {
			return err
		}
	}
	w, err := demo.NewWorkload(ctx, pg.URL)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Seed(ctx, 200); err != nil {
		return err
	}

	lf := lakeFlags{lake: lakeDir}
	cat, bucket, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	fmt.Fprintf(out, "copying their first rows into the lake in %s\n", lakeDir)
	var sources []ingest.Options
	for _, s := range demo.Services {
		o := ingest.Options{Source: pg.URL(s), Name: s, FlushAge: 500 * time.Millisecond, Metrics: ingestMetrics, Logger: logger}
		// a first catch-up creates the slot and copies the rows already there
		first := o
		first.CatchUp = true
		if err := ingest.Run(ctx, cat, first); err != nil {
			return err
		}
		sources = append(sources, o)
	}
	loc, _ := lake.Parse(lakeDir)
	eng, err := query.Open(ctx, cat, query.Options{Lake: loc, Bucket: bucket, Logger: logger})
	if err != nil {
		return err
	}
	defer eng.Close()

	runCtx, stop := context.WithCancel(ctx)
	ingestDone := make(chan struct{})
	go func() {
		superviseSources(runCtx, cat, sources, logger.With("component", "ingest"))
		close(ingestDone)
	}()
	comp := compact.New(cat, compact.Options{Interval: 10 * time.Second, Metrics: compactMetrics, Logger: logger})
	compDone := make(chan struct{})
	go func() { _ = comp.Run(runCtx); close(compDone) }()
	go func() { // KPIs change while the workload runs
		for {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(10 * time.Second):
				printKPIs(runCtx, out, eng, demoKPIs[:1])
			}
		}
	}()
	fmt.Fprintf(out, "running the shop workload for %s at %d orders/s, streaming the three databases into the lake,\n"+
		"compacting every 10 s and printing orders by status every 10 s\n", *duration, *rate)
	log.Info("running the shop workload", "duration", *duration, "orders_per_s", *rate)
	wlErr := w.Run(ctx, *duration, *rate)
	stop()
	<-ingestDone
	<-compDone
	if wlErr != nil {
		return wlErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// drain what the stop left behind, then compact everything once more
	fmt.Fprintln(out, "\nworkload stopped: streaming what is left and compacting once more")
	for _, o := range sources {
		o.CatchUp = true
		if err := ingest.Run(ctx, cat, o); err != nil {
			return err
		}
	}
	if _, err := comp.RunOnce(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nworkload: %d placed, %d paid, %d shipped, %d delivered, %d cancelled\n",
		w.Placed, w.Paid, w.Shipped, w.Delivered, w.Cancelled)
	printKPIs(ctx, out, eng, demoKPIs)
	if err := compareCounts(ctx, out, eng, pg); err != nil {
		return err
	}
	fmt.Fprintf(out, `
The lake is in %s (Iceberg tables; catalog %s; the demo's log %s).
Query it:     cdclake query --lake %s "SELECT * FROM orders.public.orders LIMIT 5"
Serve it:     cdclake serve --lake %s   then open http://127.0.0.1:8080/ (dashboard),
              http://127.0.0.1:8080/v1/tables (API), or psql -h 127.0.0.1 -p 5433
`, lakeDir, filepath.Join(lakeDir, "catalog.db"), logPath, lakeDir, lakeDir)
	return nil
}

func printKPIs(ctx context.Context, out io.Writer, eng *query.Engine, kpis []struct{ title, sql string }) {
	for _, k := range kpis {
		res, err := eng.Query(ctx, k.sql)
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(out, "\n%s: %v\n", k.title, err)
			}
			continue
		}
		fmt.Fprintf(out, "\n%s (as of %s)\n", k.title, freshnessText(res.Freshness))
		_ = query.WriteTable(out, res)
		res.Release()
	}
}

func freshnessText(fs []query.Freshness) string {
	var oldest time.Time
	for _, f := range fs {
		if oldest.IsZero() || f.CommitTime.Before(oldest) {
			oldest = f.CommitTime
		}
	}
	if oldest.IsZero() {
		return "no data yet"
	}
	return oldest.Local().Format("15:04:05")
}

// compareCounts checks the lake's current row counts against PostgreSQL's.
func compareCounts(ctx context.Context, out io.Writer, eng *query.Engine, pg *pgtest.Cluster) error {
	fmt.Fprintf(out, "\n%-28s %8s %10s\n", "table", "lake", "postgres")
	for _, t := range []struct{ db, table string }{{"orders", "customers"}, {"orders", "orders"}, {"payments", "payments"}, {"shipping", "shipments"}} {
		var want int64
		if err := pg.QueryRow(t.db, "SELECT count(*) FROM "+t.table, &want); err != nil {
			return err
		}
		res, err := eng.Query(ctx, fmt.Sprintf("SELECT count(*) FROM %s.public.%s", t.db, t.table))
		if err != nil {
			return err
		}
		got, _ := query.Text(res.Records[0].Column(0), 0)
		res.Release()
		fmt.Fprintf(out, "%-28s %8s %10d\n", t.db+".public."+t.table, got, want)
		if got != fmt.Sprint(want) {
			return fmt.Errorf("the lake has %s rows in %s.%s, PostgreSQL %d", got, t.db, t.table, want)
		}
	}
	return nil
}
