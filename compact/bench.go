package compact

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/procstat"
)

// BenchOptions size the compaction benchmark. Zero values mean the
// defaults.
type BenchOptions struct {
	Rows int64 // rows of the table (default 10M)
	// Scenarios run one after the other on the same table (default:
	// 1M uniform, 10k recent, 10k uniform).
	Scenarios []BenchScenario
	Dir       string // work folder (default: a temporary one, removed after)
	Logger    *slog.Logger
}

// BenchScenario is one batch of changes to compact.
type BenchScenario struct {
	Changes int64
	// Recent: inserts of new keys and updates and deletes of the newest
	// 1% of the keys (order life cycles); else uniform over every key.
	Recent bool
}

func (s BenchScenario) String() string {
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

// BenchResult is one measured run: cdclake's compaction or DuckDB's
// merge SQL over the same Parquet files.
type BenchResult struct {
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

// Bench builds a changelog of Rows snapshot reads, compacts it, then for
// each scenario appends changes and compacts them, next to DuckDB running
// the equivalent merge over the same Parquet files (when built with
// -tags duckdb_arrow). The data is synthetic: orders(id bigint key,
// customer_id int, status text, amount numeric(12,2), created_at
// timestamptz, note text).
func Bench(ctx context.Context, o BenchOptions) ([]BenchResult, error) {
	if o.Rows <= 0 {
		o.Rows = 10_000_000
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = []BenchScenario{{Changes: 1_000_000}, {Changes: 10_000, Recent: true}, {Changes: 10_000}}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cat, dir, done, err := benchCatalog(ctx, o.Dir, "cdclake-bench-compact-")
	if err != nil {
		return nil, err
	}
	defer done()
	ref := TableRef{"bench", "public", "orders"}
	g := &benchGen{rng: rand.New(rand.NewSource(1)), lsn: 1000, next: o.Rows + 1}
	cl, err := g.createChangelog(ctx, cat, ref)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("writing the initial changelog", "rows", o.Rows)
	if cl, err = g.appendChanges(ctx, cl, o.Rows, func(b *changeBuilder, i int64) { b.row("r", i+1) }); err != nil {
		return nil, err
	}
	// changelog merges are housekeeping, not measured here
	c := New(cat, Options{Tables: []TableRef{ref}, Logger: o.Logger, ChangelogFileSize: 1})
	var out []BenchResult
	res, err := measure(func() (Result, error) { return c.Compact(ctx, ref) })
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
		sn, err := cat.Iceberg().LoadTable(ctx, SnapshotIdent(ref.Source, ref.Schema, ref.Name))
		if err != nil {
			return nil, err
		}
		from := tableLSN(sn)
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
		recent := max(1, g.next/100)
		if cl, err = g.appendChanges(ctx, cl, sc.Changes, func(b *changeBuilder, i int64) {
			var id int64
			if sc.Recent {
				id = g.next - 1 - g.rng.Int63n(recent)
			} else {
				id = 1 + g.rng.Int63n(g.next-1)
			}
			switch r := g.rng.Intn(10); {
			case r < 2 || (sc.Recent && r < 4):
				b.row("c", g.next)
				g.next++
				live++
			case r < 9:
				b.row("u", id)
			default:
				b.deleteKey(id)
				live--
			}
		}); err != nil {
			return nil, err
		}
		to := tableLSN(cl)
		var changeFiles []string
		ctasks, err := cl.Scan(table.WithRowFilter(iceberg.GreaterThanEqual(iceberg.Reference(ingest.ColLSN), int64(from)))).PlanFiles(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range ctasks {
			changeFiles = append(changeFiles, t.File.FilePath())
		}

		res, err := measure(func() (Result, error) { return c.Compact(ctx, ref) })
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
		cols := []string{"id", "customer_id", "status", "amount", "created_at", "note"}
		var n int64
		outFile := filepath.Join(dir, fmt.Sprintf("duckdb-%d.parquet", len(out)))
		dres, err := measure(func() (Result, error) {
			var err error
			n, err = duckMerge(ctx, localPaths(baseFiles), localPaths(changeFiles), []string{"id"}, cols, from, to, outFile)
			return Result{WrittenRows: n, ChangeRows: sc.Changes}, err
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
func measure(f func() (Result, error)) (BenchResult, error) {
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeakRSS()
	cpu0, start := processCPU(), time.Now()
	r, err := f()
	out := BenchResult{Elapsed: time.Since(start), CPU: processCPU() - cpu0, PeakRSS: procstat.PeakRSS(),
		Changes: r.ChangeRows, Rewritten: r.RewrittenRows, Written: r.WrittenRows}
	return out, err
}

// tableSize counts the rows and bytes of a snapshot table from its
// metadata.
func tableSize(ctx context.Context, cat *catalog.Catalog, ref TableRef) (rows, bytes int64, err error) {
	sn, err := cat.Iceberg().LoadTable(ctx, SnapshotIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return 0, 0, err
	}
	tasks, err := sn.Scan().PlanFiles(ctx)
	for _, t := range tasks {
		rows, bytes = rows+t.File.Count(), bytes+t.File.FileSizeBytes()
	}
	return rows, bytes, err
}

func localPaths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = strings.TrimPrefix(p, "file://")
	}
	return out
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PrintBench writes results as a table, each DuckDB run next to the
// cdclake run of its scenario with the ratio of their times.
func PrintBench(w io.Writer, results []BenchResult) {
	fmt.Fprintf(w, "%-38s %-8s %10s %9s %10s %10s %8s %8s %7s %9s %6s\n", "scenario", "who", "rows", "changes", "rewritten", "written", "MiB", "seconds", "CPU s", "peak MiB", "ratio")
	cdc := map[string]BenchResult{}
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

// benchGen writes synthetic changelog rows.
type benchGen struct {
	rng  *rand.Rand
	lsn  int64
	next int64 // next new key
	hour time.Time
	// perCommit is the number of rows appendChanges commits at a time, in
	// one file each (default 1M).
	perCommit int64
}

var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "customer_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}, Nullable: true},
	{Name: "created_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ingest.ColOp, Type: arrow.BinaryTypes.String},
	{Name: ingest.ColLSN, Type: arrow.PrimitiveTypes.Int64},
	{Name: ingest.ColSeq, Type: arrow.PrimitiveTypes.Int64},
	{Name: ingest.ColXID, Type: arrow.PrimitiveTypes.Int64},
	{Name: ingest.ColCommitTS, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: ingest.ColUnchanged, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
}, nil)

// createChangelog creates a changelog table as ingest does.
func (g *benchGen) createChangelog(ctx context.Context, cat *catalog.Catalog, ref TableRef) (*table.Table, error) {
	ident := ChangelogIdent(ref.Source, ref.Schema, ref.Name)
	if err := cat.Iceberg().CreateNamespace(ctx, ident[:2], nil); err != nil {
		return nil, err
	}
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(benchSchema, false)
	if err != nil {
		return nil, err
	}
	ts, _ := sc.FindFieldByName(ingest.ColCommitTS)
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{ts.ID}, FieldID: 1000,
		Name: ingest.ColCommitTS + "_hour", Transform: iceberg.HourTransform{}})
	keys, _ := json.Marshal([]string{"id"})
	props := iceberg.Properties{PropPrimaryKey: string(keys), // as ingest's changelogProps (ingest/sink.go)
		"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "10",
		"write.metadata.delete-after-commit.enabled": "true", "write.metadata.previous-versions-max": "10",
		"write.parquet.compression-codec": "zstd", "format-version": "2"}
	g.hour = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return cat.Iceberg().CreateTable(ctx, ident, sc, icecat.WithPartitionSpec(&spec), icecat.WithProperties(props))
}

// changeBuilder appends changelog rows of one transaction.
type changeBuilder struct {
	g   *benchGen
	b   *array.RecordBuilder
	seq int64
	ts  arrow.Timestamp
}

func (b *changeBuilder) meta(op string, unsent []string) {
	b.b.Field(6).(*array.StringBuilder).Append(op)
	b.b.Field(7).(*array.Int64Builder).Append(b.g.lsn)
	b.b.Field(8).(*array.Int64Builder).Append(b.seq)
	b.b.Field(9).(*array.Int64Builder).Append(b.g.lsn / 100)
	b.b.Field(10).(*array.TimestampBuilder).Append(b.ts)
	lb := b.b.Field(11).(*array.ListBuilder)
	if len(unsent) == 0 {
		lb.AppendNull()
	} else {
		lb.Append(true)
		for _, u := range unsent {
			lb.ValueBuilder().(*array.StringBuilder).Append(u)
		}
	}
	b.seq++
}

var benchStatus = []string{"placed", "paid", "shipped", "delivered", "cancelled"}

// row appends a full row of key id.
func (b *changeBuilder) row(op string, id int64) {
	g := b.g
	b.b.Field(0).(*array.Int64Builder).Append(id)
	b.b.Field(1).(*array.Int32Builder).Append(int32(id % 100_000))
	b.b.Field(2).(*array.StringBuilder).Append(benchStatus[g.rng.Intn(len(benchStatus))])
	b.b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(g.rng.Int63n(10_000_000)))
	b.b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(1767225600_000000 + id*1_000_000))
	var note [16]byte
	g.rng.Read(note[:])
	b.b.Field(5).(*array.StringBuilder).Append(hex.EncodeToString(note[:]))
	b.meta(op, nil)
}

// deleteKey appends a key-only delete.
func (b *changeBuilder) deleteKey(id int64) {
	b.b.Field(0).(*array.Int64Builder).Append(id)
	for i := 1; i <= 5; i++ {
		b.b.Field(i).AppendNull()
	}
	b.meta("d", []string{"customer_id", "status", "amount", "created_at", "note"})
}

// appendChanges commits n rows, 1,000 per transaction, g.perCommit per
// commit.
func (g *benchGen) appendChanges(ctx context.Context, tbl *table.Table, n int64, add func(*changeBuilder, int64)) (*table.Table, error) {
	const perTxn = 1000
	perCommit := g.perCommit
	if perCommit <= 0 {
		perCommit = 1_000_000
	}
	for done := int64(0); done < n; {
		b := &changeBuilder{g: g, b: array.NewRecordBuilder(memory.DefaultAllocator, benchSchema)}
		end := min(n, done+perCommit)
		for i := done; i < end; i++ {
			if (i-done)%perTxn == 0 {
				g.lsn += 1000
				b.seq = 0
				g.hour = g.hour.Add(time.Second)
				b.ts = arrow.Timestamp(g.hour.UnixMicro())
			}
			add(b, i)
		}
		rec := b.b.NewRecordBatch()
		b.b.Release()
		at := array.NewTableFromRecords(benchSchema, []arrow.RecordBatch{rec})
		tx := tbl.NewTransaction()
		err := tx.AppendTable(ctx, at, 128<<10, nil)
		if err == nil {
			err = tx.SetProperties(iceberg.Properties{PropSourceLSN: strconv.FormatInt(g.lsn+1, 10)})
		}
		if err == nil {
			tbl, err = tx.Commit(ctx)
		}
		at.Release()
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("append changes: %w", err)
		}
		done = end
	}
	return tbl, nil
}

// benchCatalog opens a folder lake in dir, or in a new temporary folder
// that done removes, and returns the folder.
func benchCatalog(ctx context.Context, dir, prefix string) (cat *catalog.Catalog, folder string, done func(), err error) {
	cleanup := func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", prefix); err != nil {
			return nil, "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	cat, err = catalog.Open(ctx, catalog.Options{URL: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "lake")})
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return cat, dir, func() { cat.Close(); cleanup() }, nil
}
