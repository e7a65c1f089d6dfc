package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/cdclake/cdclake/internal/bench"
)

// benchCommand runs a benchmark scenario against its reference.
type benchCommand struct{}

func init() { commands["bench"] = func() command { return &benchCommand{} } }

func (c *benchCommand) Run(ctx context.Context, args []string) error {
	_, err := runBench(ctx, args, os.Stdout)
	return err
}

// runBench runs the scenario args name, prints the report to w and
// returns it.
func runBench(ctx context.Context, args []string, w io.Writer) (*bench.Report, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: cdclake bench [flags] %s|all\n\nScenarios (each starts its own PostgreSQL and measures a reference in the same run):\n"+
			"  stream           1M inserts + 200k updates from a slot, vs pg_recvlogical\n"+
			"  big-transaction  one 5M-row transaction through the spool\n"+
			"  snapshot         initial snapshot of a 10M-row table, vs COPY binary\n"+
			"  query            KPI queries over 10M orders on the lake (snapshot + tail), vs PostgreSQL\n"+
			"  freshness        commit-to-visible latency under 5,000 rows/s for 60 s of streaming ingest\n"+
			"  compact          compaction of 10M rows + 1M and + 10k changes, vs DuckDB's merge SQL\n"+
			"  metadata         changelog metadata growth over 86,400 flushes with compaction\n\nFlags:\n",
			strings.Join(bench.Scenarios, "|"))
		fs.PrintDefaults()
	}
	var o bench.Options
	fs.Int64Var(&o.Rows, "rows", 0, "rows (default: the scenario's size from docs/benchmarks.md)")
	fs.Int64Var(&o.Updates, "updates", 0, "stream: updates (default 200000)")
	fs.IntVar(&o.Workers, "workers", 0, "snapshot: connections (default 2)")
	fs.Int64Var(&o.MemBudget, "memory-budget", 0, "big-transaction: ingest memory budget in bytes (default 256 MiB)")
	fs.Int64Var(&o.Rate, "rate", 0, "freshness: rows written per second (default 5000)")
	fs.DurationVar(&o.Duration, "duration", 0, "freshness: how long the write load runs (default 60s)")
	fs.Int64Var(&o.Changes, "changes", 0, "compact: changes of the large batch; the two small ones are 1% of it (default 1000000, 10000)")
	fs.IntVar(&o.Flushes, "flushes", 0, "metadata: flushes, one a simulated second (default 86400)")
	fs.IntVar(&o.Snapshots, "changelog-snapshots", 0, "metadata: changelog snapshots compaction keeps (default 100)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 || (!slices.Contains(bench.Scenarios, fs.Arg(0)) && fs.Arg(0) != "all") {
		return nil, fmt.Errorf("name one scenario: %s (or all)", strings.Join(bench.Scenarios, ", "))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	run := []string{fs.Arg(0)}
	if fs.Arg(0) == "all" {
		run = bench.Scenarios
	}
	rep := &bench.Report{}
	for _, n := range run {
		if err := bench.Run(ctx, n, o, rep); err != nil {
			return nil, fmt.Errorf("bench %s: %w", n, err)
		}
	}
	fmt.Fprintf(w, "# cdclake bench %s, %s, %d cores, %s\n", strings.Join(args, " "), time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version())
	rep.Print(w)
	return rep, nil
}
