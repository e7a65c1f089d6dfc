package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/internal/changegen"
	"github.com/cdclake/cdclake/internal/procstat"
	"github.com/cdclake/cdclake/lakeformat"
)

// CompactOptions size the compaction benchmark. Zero values mean the
// defaults.
type CompactOptions struct {
	Rows int64 // rows of the table (default 10M)
	// Scenarios run one after the other on the same table (default:
	// 1M uniform, 10k recent, 10k uniform).
	Scenarios []CompactScenario
	Dir       string // work folder (default: a temporary one, removed after)
	Logger    *slog.Logger
}

// CompactScenario is one batch of changes to compact.
type CompactScenario struct {
	Changes int64
	// Recent: inserts of new keys and updates and deletes of the newest
	// 1% of the keys (order life cycles); else uniform over every key.
	Recent bool
}

func (s CompactScenario) String() string {
	kind := "uniform"
	if s.Recent {
		kind = "recent"
	}
	return fmt.Sprintf("%s changes %s", count(s.Changes), kind)
}

func count(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.FormatInt(n, 10)
}

// CompactResult is one measured run: cdclake's compaction or DuckDB's
// merge SQL over the same Parquet files.
type CompactResult struct {
	Scenario, Who string
	Rows          int64 // rows of the new state
	Changes       int64
	Rewritten     int64 // cdclake: rows read back from rewritten files
	Written       int64 // rows written
	Bytes         int64 // size of the new state's files
	Elapsed       time.Duration
	CPU           time.Duration
	PeakRSS       int64 // bytes
}

// duckMerge, set when built with -tags duckdb_arrow, runs the merge SQL
// in DuckDB and returns the rows written.
var duckMerge func(ctx context.Context, base, changes []string, keys, cols []string, from, to uint64, out string) (int64, error)

// Compaction builds a changelog of Rows snapshot reads, compacts it, then for
// each scenario appends changes and compacts them, next to DuckDB running
// the equivalent merge over the same Parquet files (when built with
// -tags duckdb_arrow). The data is synthetic: orders(id bigint key,
// customer_id int, status text, amount numeric(12,2), created_at
// timestamptz, note text).
func Compaction(ctx context.Context, o CompactOptions) ([]CompactResult, error) {
	if o.Rows <= 0 {
		o.Rows = 10_000_000
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = []CompactScenario{{Changes: 1_000_000}, {Changes: 10_000, Recent: true}, {Changes: 10_000}}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cat, dir, done, err := changegen.Lake(ctx, o.Dir, "cdclake-bench-compact-")
	if err != nil {
		return nil, err
	}
	defer done()
	ref := compact.TableRef{Source: "bench", Schema: "public", Name: "orders"}
	g := changegen.New(1, o.Rows+1)
	cl, err := g.CreateChangelog(ctx, cat, lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return nil, err
	}
	o.Logger.Info("writing the initial changelog", "rows", o.Rows)
	if cl, err = g.Append(ctx, cl, o.Rows, func(b *changegen.Builder, i int64) { b.Row("r", i+1) }); err != nil {
		return nil, err
	}
	// changelog merges are housekeeping, not measured here
	c := compact.New(cat, compact.Options{Tables: []compact.TableRef{ref}, Logger: o.Logger, ChangelogFileSize: 1})
	var out []CompactResult
	res, err := measure(func() (compact.Result, error) { return c.Compact(ctx, ref) })
	if err != nil {
		return nil, err
	}
	res.Scenario, res.Who = fmt.Sprintf("%s rows, first compaction", count(o.Rows)), "cdclake"
	if res.Rows, res.Bytes, err = tableSize(ctx, cat, ref); err != nil {
		return nil, err
	}
	out = append(out, res)

	live := o.Rows // keys 1..next-1, minus deletes (approximately: deletes may repeat)
	for _, sc := range o.Scenarios {
		name := fmt.Sprintf("%s rows + %s", count(o.Rows), sc)
		sn, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name))
		if err != nil {
			return nil, err
		}
		from := sourceLSN(sn)
		var baseFiles []string
		tasks, err := sn.Scan().PlanFiles(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range tasks {
			baseFiles = append(baseFiles, t.File.FilePath())
		}
		if cl, err = cat.Iceberg().LoadTable(ctx, cl.Identifier()); err != nil {
			return nil, err
		}
		recent := max(1, g.Next/100)
		if cl, err = g.Append(ctx, cl, sc.Changes, func(b *changegen.Builder, i int64) {
			var id int64
			if sc.Recent {
				id = g.Next - 1 - g.Rng.Int63n(recent)
			} else {
				id = 1 + g.Rng.Int63n(g.Next-1)
			}
			switch r := g.Rng.Intn(10); {
			case r < 2 || (sc.Recent && r < 4):
				b.Row("c", g.Next)
				g.Next++
				live++
			case r < 9:
				b.Row("u", id)
			default:
				b.DeleteKey(id)
				live--
			}
		}); err != nil {
			return nil, err
		}
		to := sourceLSN(cl)
		var changeFiles []string
		ctasks, err := cl.Scan(table.WithRowFilter(iceberg.GreaterThanEqual(iceberg.Reference(lakeformat.ColLSN), int64(from)))).PlanFiles(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range ctasks {
			changeFiles = append(changeFiles, t.File.FilePath())
		}

		res, err := measure(func() (compact.Result, error) { return c.Compact(ctx, ref) })
		if err != nil {
			return nil, err
		}
		res.Scenario, res.Who = name, "cdclake"
		if res.Rows, res.Bytes, err = tableSize(ctx, cat, ref); err != nil {
			return nil, err
		}
		out = append(out, res)
		o.Logger.Info("compacted", "scenario", name, "seconds", res.Elapsed.Seconds())
		if duckMerge == nil {
			continue
		}
		var n int64
		outFile := filepath.Join(dir, fmt.Sprintf("duckdb-%d.parquet", len(out)))
		dres, err := measure(func() (compact.Result, error) {
			var err error
			n, err = duckMerge(ctx, localPaths(baseFiles), localPaths(changeFiles), []string{"id"}, changegen.Columns, from, to, outFile)
			return compact.Result{WrittenRows: n, ChangeRows: sc.Changes}, err
		})
		if st, err := os.Stat(outFile); err == nil {
			dres.Bytes = st.Size()
		}
		if err != nil {
			return nil, fmt.Errorf("duckdb merge: %w", err)
		}
		if n != res.Rows {
			return nil, fmt.Errorf("duckdb wrote %d rows, cdclake's table holds %d", n, res.Rows)
		}
		dres.Scenario, dres.Who, dres.Rows = name, "duckdb", n
		out = append(out, dres)
	}
	return out, nil
}

// measure runs f with the peak RSS reset and returns its cost.
func measure(f func() (compact.Result, error)) (CompactResult, error) {
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeakRSS()
	cpu0, start := procstat.CPU(), time.Now()
	r, err := f()
	out := CompactResult{Elapsed: time.Since(start), CPU: procstat.CPU() - cpu0, PeakRSS: procstat.PeakRSS(),
		Changes: r.ChangeRows, Rewritten: r.RewrittenRows, Written: r.WrittenRows}
	return out, err
}

// tableSize counts the rows and bytes of a snapshot table from its
// metadata.
func tableSize(ctx context.Context, cat *catalog.Catalog, ref compact.TableRef) (rows, bytes int64, err error) {
	sn, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return 0, 0, err
	}
	tasks, err := sn.Scan().PlanFiles(ctx)
	for _, t := range tasks {
		rows, bytes = rows+t.File.Count(), bytes+t.File.FileSizeBytes()
	}
	return rows, bytes, err
}

// sourceLSN returns the source LSN a table's data is complete up to.
func sourceLSN(tbl *table.Table) uint64 {
	v, _ := strconv.ParseUint(tbl.Properties()[lakeformat.PropSourceLSN], 10, 64)
	return v
}

func localPaths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimPrefix(p, "file://")
	}
	return out
}

// PrintCompaction writes results as a table, each DuckDB run next to the
// cdclake run of its scenario with the ratio of their times.
func PrintCompaction(w io.Writer, results []CompactResult) {
	fmt.Fprintf(w, "%-38s %-8s %10s %9s %10s %10s %8s %8s %7s %9s %6s\n", "scenario", "who", "rows", "changes", "rewritten", "written", "MiB", "seconds", "CPU s", "peak MiB", "ratio")
	cdc := map[string]CompactResult{}
	for _, r := range results {
		if r.Who == "cdclake" {
			cdc[r.Scenario] = r
		}
	}
	for _, r := range results {
		ratio := "-"
		if r.Who == "duckdb" {
			ratio = fmt.Sprintf("%.2f", cdc[r.Scenario].Elapsed.Seconds()/r.Elapsed.Seconds())
		}
		fmt.Fprintf(w, "%-38s %-8s %10d %9d %10d %10d %8d %8.2f %7.2f %9d %6s\n", r.Scenario, r.Who, r.Rows, r.Changes, r.Rewritten,
			r.Written, r.Bytes>>20, r.Elapsed.Seconds(), r.CPU.Seconds(), r.PeakRSS>>20, ratio)
	}
}
