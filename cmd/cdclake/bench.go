package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/cdclake/cdclake/internal/bench"
)

// benchCommand runs a benchmark scenario against its reference.
type benchCommand struct{}

func init() { commands["bench"] = func() command { return &benchCommand{} } }

var scenarios = map[string]func(context.Context, bench.Options) ([]bench.Result, error){
	"stream":          bench.Stream,
	"big-transaction": bench.BigTransaction,
	"snapshot":        bench.Snapshot,
}

func (c *benchCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	fs.Int64Var(&o.Rows, "rows", 0, "rows (default: the scenario's size from docs/benchmarks.md)")
	fs.Int64Var(&o.Updates, "updates", 0, "stream: updates (default 200000)")
	fs.IntVar(&o.Workers, "workers", 0, "snapshot: connections (default 2)")
	fs.Int64Var(&o.MemBudget, "memory-budget", 0, "big-transaction: ingest memory budget in bytes (default 256 MiB)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	if fs.NArg() != 1 || (scenarios[fs.Arg(0)] == nil && fs.Arg(0) != "all") {
		return fmt.Errorf("name one scenario: %s (or all)", strings.Join(names, ", "))
	}
	run := []string{fs.Arg(0)}
	if fs.Arg(0) == "all" {
		run = names
	}
	var results []bench.Result
	for _, n := range run {
		r, err := scenarios[n](ctx, o)
		if err != nil {
			return fmt.Errorf("bench %s: %w", n, err)
		}
		results = append(results, r...)
	}
	if len(results) == 0 {
		return errors.New("no results")
	}
	fmt.Printf("# cdclake bench %s, %s, %d cores, %s\n", strings.Join(args, " "), time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version())
	bench.Print(os.Stdout, results)
	return nil
}
