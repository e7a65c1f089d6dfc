package compact

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
)

// TestBenchCompact runs the compaction benchmark when CDCLAKE_BENCH_COMPACT
// holds the table's row count (e.g. 10000000); build with -tags
// duckdb_arrow for the DuckDB reference. See docs/benchmarks.md.
func TestBenchCompact(t *testing.T) {
	rows, _ := strconv.ParseInt(os.Getenv("CDCLAKE_BENCH_COMPACT"), 10, 64)
	if rows <= 0 {
		t.Skip("set CDCLAKE_BENCH_COMPACT=rows to run the compaction benchmark")
	}
	o := BenchOptions{Rows: rows, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if c, _ := strconv.ParseInt(os.Getenv("CDCLAKE_BENCH_CHANGES"), 10, 64); c > 0 {
		o.Scenarios = []BenchScenario{{Changes: c}, {Changes: c / 100, Recent: true}, {Changes: c / 100}}
	}
	res, err := Bench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	PrintBench(os.Stdout, res)
}

// TestBenchMetadata simulates a day of one commit a second on a changelog
// with a compaction pass a minute when CDCLAKE_BENCH_METADATA holds the
// number of flushes (86400 for a day). See docs/benchmarks.md.
func TestBenchMetadata(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CDCLAKE_BENCH_METADATA"))
	if n <= 0 {
		t.Skip("set CDCLAKE_BENCH_METADATA=flushes to run the metadata growth benchmark")
	}
	o := MetadataBenchOptions{Flushes: n, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	// CDCLAKE_BENCH_CHANGELOG_SNAPSHOTS overrides Options.ChangelogMaxSnapshots
	o.Options.ChangelogMaxSnapshots, _ = strconv.Atoi(os.Getenv("CDCLAKE_BENCH_CHANGELOG_SNAPSHOTS"))
	points, err := BenchMetadata(context.Background(), o)
	PrintMetadataBench(os.Stdout, points)
	if err != nil {
		t.Fatal(err)
	}
}
