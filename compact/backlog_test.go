package compact

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/changegen"
	"github.com/cdclake/cdclake/internal/procstat"
	"github.com/cdclake/cdclake/lakeformat"
)

// backlogLake writes a changelog of keys inserts then changes updates and
// deletes of them (uniform over the keys, 1,000 per transaction, files of
// 10,000 rows as ingest's batches), never compacted: a backlog. It
// writes the same rows each time.
func backlogLake(t testing.TB, keys, changes int64) (*catalog.Catalog, TableRef) {
	t.Helper()
	ctx := context.Background()
	cat, _, done, err := changegen.Lake(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(done)
	ref := TableRef{"bench", "public", "orders"}
	g := changegen.New(7, keys+1)
	g.PerCommit = 10_000
	cl, err := g.CreateChangelog(ctx, cat, lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		t.Fatal(err)
	}
	if cl, err = g.Append(ctx, cl, keys, func(b *changegen.Builder, i int64) { b.Row("c", i+1) }); err != nil {
		t.Fatal(err)
	}
	if _, err = g.Append(ctx, cl, changes, func(b *changegen.Builder, i int64) {
		id := 1 + g.Rng.Int63n(keys)
		if g.Rng.Intn(10) == 0 {
			b.DeleteKey(id)
		} else {
			b.Row("u", id)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return cat, ref
}

// TestCompactBacklogInSlices compacts a backlog of 210,000 changes with
// MaxChangeRows 10,000: it must take at least twenty-one commits of at
// most 10,000 changes and give the same table as one commit. (Its memory
// is measured by cdclake bench compact-backlog, docs/benchmarks.md.)
func TestCompactBacklogInSlices(t *testing.T) {
	const keys, changes, maxRows = 10_000, 200_000, 10_000
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cols := []string{"id", "customer_id", "status", "amount", "created_at", "note", lakeformat.ColLSN}
	ctx := context.Background()

	run := func(max int64) (Result, []string) {
		cat, ref := backlogLake(t, keys, changes)
		c := New(cat, Options{Tables: []TableRef{ref}, Logger: quiet, MaxChangeRows: max, ChangelogFileSize: 1})
		res, err := c.Compact(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return res, snapshotRows(t, cat, ref.Source, ref.Name, cols)
	}
	whole, want := run(1 << 40)
	sliced, got := run(maxRows)
	if whole.Slices != 1 {
		t.Errorf("without a limit the backlog took %d commits, want 1", whole.Slices)
	}
	if sliced.Slices < (keys+changes)/maxRows || sliced.sliceRows > maxRows {
		t.Errorf("the backlog of %d changes took %d commits of up to %d changes, want at least %d of at most %d",
			keys+changes, sliced.Slices, sliced.sliceRows, (keys+changes)/maxRows, maxRows)
	}
	if sliced.ChangeRows != keys+changes || whole.ChangeRows != keys+changes {
		t.Errorf("applied %d changes in slices and %d in one commit, want %d", sliced.ChangeRows, whole.ChangeRows, keys+changes)
	}
	if sliced.LSN != whole.LSN {
		t.Errorf("watermark %d after the slices, %d after one commit", sliced.LSN, whole.LSN)
	}
	compareRows(t, "sliced vs one commit", got, want)
}

// TestBacklogCutNeverSplitsATransaction: a transaction over MaxChangeRows
// is applied whole, and the next slice starts after it.
func TestBacklogCutNeverSplitsATransaction(t *testing.T) {
	cat, ref := backlogLake(t, 5_000, 5_000) // transactions of 1,000 rows
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	res, err := New(cat, Options{Tables: []TableRef{ref}, Logger: quiet, MaxChangeRows: 300}).Compact(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slices != 10 || res.ChangeRows != 10_000 || res.sliceRows != 1000 {
		t.Errorf("%d commits applying %d changes, want 10 transactions of 1,000 in 10 commits", res.Slices, res.ChangeRows)
	}
}

// BenchmarkCompactBacklog measures a compaction of a backlog of 1M and
// 4M changes (over 100,000 keys, files of 10,000 rows) with the default
// MaxChangeRows, and of 4M in one commit (no limit, as before it
// existed): peak RSS (VmHWM, reset after the backlog is written) and
// commits. Run with -benchtime 1x.
func BenchmarkCompactBacklog(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, bc := range []struct {
		name    string
		changes int64
		max     int64
	}{{"1M", 1_000_000, 0}, {"4M", 4_000_000, 0}, {"4M-one-commit", 4_000_000, 1 << 40}} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				cat, ref := backlogLake(b, 100_000, bc.changes-100_000)
				c := New(cat, Options{Tables: []TableRef{ref}, Logger: quiet, MaxChangeRows: bc.max, ChangelogFileSize: 1})
				b.StartTimer()
				runtime.GC()
				debug.FreeOSMemory()
				procstat.ResetPeakRSS()
				cpu0 := procstat.CPU()
				res, err := c.Compact(context.Background(), ref)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.Slices), "commits")
				b.ReportMetric(float64(procstat.PeakRSS())/(1<<20), "peak-RSS-MiB")
				b.ReportMetric((procstat.CPU() - cpu0).Seconds(), "CPU-s")
				b.ReportMetric(float64(res.ChangeRows), "changes")
			}
		})
	}
}
