package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/procstat"
)

// Result is one measured run: cdclake or its reference.
type Result struct {
	Scenario, Who string
	Rows          int64
	Bytes         int64 // input bytes (WAL or table data)
	Elapsed       time.Duration
	CPU           time.Duration // of the measured process (cdclake: this process)
	WalsenderCPU  time.Duration // of the PostgreSQL backend serving it
	PeakRSS       int64         // bytes; 0 when not measured
}

// RowsPerSec is the throughput.
func (r Result) RowsPerSec() float64 { return float64(r.Rows) / r.Elapsed.Seconds() }

// Print writes results as a table with the ratio of each run to the
// scenario's reference (the last result of the scenario).
func Print(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\twho\trows\trows/s\tMB/s\tratio\tpeak RSS MiB\tCPU s\twalsender CPU s\t")
	ref := map[string]Result{}
	for _, r := range results {
		ref[r.Scenario] = r
	}
	for _, r := range results {
		ratio := r.RowsPerSec() / ref[r.Scenario].RowsPerSec()
		rss := "-"
		if r.PeakRSS > 0 {
			rss = strconv.FormatInt(r.PeakRSS>>20, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t%.2f\t%s\t%.2f\t%.2f\t\n", r.Scenario, r.Who, r.Rows, r.RowsPerSec(),
			float64(r.Bytes)/r.Elapsed.Seconds()/1e6, ratio, rss, r.CPU.Seconds(), r.WalsenderCPU.Seconds())
	}
	tw.Flush()
}

// env is a private PostgreSQL and lake for one scenario.
type env struct {
	dir string
	pg  *pgtest.Cluster
	cat *catalog.Catalog
	log *slog.Logger
}

func newEnv(ctx context.Context, settings map[string]string) (*env, error) {
	dir, err := os.MkdirTemp("", "cdclake-bench-")
	if err != nil {
		return nil, err
	}
	pg, err := pgtest.New(dir, pgtest.Options{Settings: settings})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	lakeDir := filepath.Join(dir, "lake")
	cat, err := catalog.Open(ctx, catalog.Options{URL: filepath.Join(lakeDir, "catalog.db"), Warehouse: "file://" + lakeDir})
	if err != nil {
		pg.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := pg.ExecErr("postgres", "CREATE DATABASE bench"); err != nil {
		return nil, err
	}
	return &env{dir: dir, pg: pg, cat: cat, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil
}

func (e *env) close() {
	e.cat.Close()
	e.pg.Stop()
	os.RemoveAll(e.dir)
}

func (e *env) url() string { return e.pg.URL("bench") }

func (e *env) queryInt(ctx context.Context, sql string) (int64, error) {
	conn, err := pgx.Connect(ctx, e.url())
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var v int64
	err = conn.QueryRow(ctx, sql).Scan(&v)
	return v, err
}

// walsenderWatcher samples the CPU time of the walsender serving
// application name app until stopped, and returns the last sample.
func (e *env) walsenderWatcher(ctx context.Context, app string) (stop func() time.Duration) {
	done := make(chan struct{})
	result := make(chan time.Duration, 1)
	go func() {
		var last time.Duration
		conn, err := pgx.Connect(ctx, e.url())
		if err == nil {
			defer conn.Close(context.Background())
		}
		pid := 0
		for {
			select {
			case <-done:
				result <- last
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err != nil {
				continue
			}
			if pid == 0 {
				_ = conn.QueryRow(ctx, "SELECT pid FROM pg_stat_replication WHERE application_name = $1", app).Scan(&pid)
			}
			if pid != 0 {
				if c := procstat.PIDCPU(pid); c > 0 {
					last = c
				}
			}
		}
	}()
	return func() time.Duration { close(done); return <-result }
}

// Scenarios are the scenario names, in the order "all" runs them.
var Scenarios = []string{"stream", "big-transaction", "snapshot", "query", "freshness", "compact", "metadata"}

// Report gathers what the scenarios of one run measured.
type Report struct {
	Results   []Result // stream, big-transaction, snapshot
	Query     *QueryReport
	Freshness *FreshnessReport
	Compact   []CompactResult
	Metadata  []MetadataPoint
}

// Run runs scenario name and adds its results to r.
func Run(ctx context.Context, name string, o Options, r *Report) error {
	var err error
	var res []Result
	switch name {
	case "stream":
		res, err = Stream(ctx, o)
	case "big-transaction":
		res, err = BigTransaction(ctx, o)
	case "snapshot":
		res, err = Snapshot(ctx, o)
	case "query":
		r.Query, err = Query(ctx, o)
	case "freshness":
		r.Freshness, err = Freshness(ctx, o)
	case "compact":
		co := CompactOptions{Rows: o.Rows}
		if o.Changes > 0 { // as the defaults: one large batch, then 1% recent and 1% uniform
			co.Scenarios = []CompactScenario{{Changes: o.Changes}, {Changes: max(1, o.Changes/100), Recent: true},
				{Changes: max(1, o.Changes/100)}}
		}
		r.Compact, err = Compaction(ctx, co)
	case "metadata":
		r.Metadata, err = Metadata(ctx, MetadataOptions{Flushes: o.Flushes,
			Options: compact.Options{ChangelogMaxSnapshots: o.Snapshots}})
	default:
		return fmt.Errorf("no scenario %q", name)
	}
	r.Results = append(r.Results, res...)
	return err
}

// Print writes every part of the report that holds results.
func (r *Report) Print(w io.Writer) {
	sep := ""
	if len(r.Results) > 0 {
		Print(w, r.Results)
		sep = "\n"
	}
	if q := r.Query; q != nil {
		fmt.Fprintf(w, "%squery: %d orders, 10000 customers; PostgreSQL load %s, ingest (initial snapshot) %s, compaction %s,\n"+
			"  then %d updates after the snapshot's watermark, ingested in %s\n", sep, q.Orders, round(q.Load), round(q.Ingest),
			round(q.Compaction), q.Tail, round(q.TailCatch))
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "query\trows\tPostgreSQL ms\tlake ms, changelog only\tlake ms, snapshot + tail\tratio\t")
		for _, t := range q.Queries {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t\n", t.Name, t.Rows, ms(t.PG), ms(t.Changelog), ms(t.Lake),
				t.PG.Seconds()/t.Lake.Seconds())
		}
		tw.Flush()
		fmt.Fprintln(w, "  median of 5 warm runs (3 for changelog only); ratio = PostgreSQL / lake (snapshot + tail): > 1, the lake is faster;\n"+
			"  every lake answer equals PostgreSQL's")
		sep = "\n"
	}
	if f := r.Freshness; f != nil {
		fmt.Fprintf(w, "%sfreshness: %d rows in %d transactions over %s (%.0f rows/s), ingest streaming with its default flushes;\n"+
			"  lake polled every %s, visible = when the poll that saw a row returned\n"+
			"  commit-to-visible p50 %s, p99 %s, max %s (goal: p50 < 1 s, p99 < 2 s)\n", sep, f.Rows, f.Commits, round(f.Load),
			float64(f.Rows)/f.Load.Seconds(), f.Poll, f.P50.Round(time.Millisecond), f.P99.Round(time.Millisecond), f.Max.Round(time.Millisecond))
		sep = "\n"
	}
	if len(r.Compact) > 0 {
		fmt.Fprintf(w, "%scompact: cdclake's compaction vs DuckDB running the merge SQL over the same Parquet files\n"+
			"  (ratio, on DuckDB's line = cdclake time / DuckDB time: < 1, cdclake is faster)\n", sep)
		PrintCompaction(w, r.Compact)
		sep = "\n"
	}
	if len(r.Metadata) > 0 {
		fmt.Fprintf(w, "%smetadata: a flush a (simulated) second on one changelog, a compaction pass every 60 flushes\n", sep)
		PrintMetadata(w, r.Metadata)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round(d time.Duration) time.Duration {
	if d > 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
