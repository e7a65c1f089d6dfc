package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/changegen"
	"github.com/cdclake/cdclake/lakeformat"
)

// MetadataOptions size the metadata growth benchmark. Zero values
// mean the defaults.
type MetadataOptions struct {
	Flushes      int // commits of a few rows, one simulated second apart (default 86,400: a day)
	CompactEvery int // a compaction pass every this many flushes (default 60: once a minute)
	ReportEvery  int // a report line every this many flushes (default 3,600: an hour)
	RowsPerFlush int // default 5
	Dir          string
	Logger       *slog.Logger
	Options      compact.Options // compaction options
}

// MetadataPoint is the state of the changelog after some flushes.
type MetadataPoint struct {
	Flushes       int
	MetadataBytes int64 // the current metadata.json
	Snapshots     int
	DataFiles     int
	CommitP50     time.Duration // of the flushes since the previous point
	CommitP99     time.Duration
	CompactMean   time.Duration // compaction passes since the previous point
}

// Metadata simulates ingest committing a few rows to one changelog
// every second, with a compaction pass (compaction, hour merges, snapshot
// expiry) every minute, and reports the changelog's metadata size and
// commit latency along the way. Time is simulated in the rows' commit
// timestamps only: the flushes run as fast as they can, so retention by
// age keeps more snapshots than at one commit a second and the snapshot
// count cap (Options.ChangelogMaxSnapshots) is what bounds them.
func Metadata(ctx context.Context, o MetadataOptions) ([]MetadataPoint, error) {
	if o.Flushes <= 0 {
		o.Flushes = 86_400
	}
	if o.CompactEvery <= 0 {
		o.CompactEvery = 60
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = 3600
	}
	if o.RowsPerFlush <= 0 {
		o.RowsPerFlush = 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cat, _, done, err := changegen.Lake(ctx, o.Dir, "cdclake-bench-metadata-")
	if err != nil {
		return nil, err
	}
	defer done()
	ref := compact.TableRef{Source: "bench", Schema: "public", Name: "orders"}
	ident := lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name)
	g := changegen.New(1, 1)
	tbl, err := g.CreateChangelog(ctx, cat, ident)
	if err != nil {
		return nil, err
	}
	co := o.Options
	co.Tables = []compact.TableRef{ref}
	co.Logger = o.Logger
	c := compact.New(cat, co)
	var out []MetadataPoint
	var commits, passes []time.Duration
	for i := 1; i <= o.Flushes; i++ {
		b := g.Builder()
		b.Begin()
		for range o.RowsPerFlush {
			if g.Next > 100 && g.Rng.Intn(2) == 0 {
				b.Row("u", 1+g.Rng.Int63n(g.Next-1))
			} else {
				b.Row("c", g.Next)
				g.Next++
			}
		}
		rec := b.Record()
		at := array.NewTableFromRecords(changegen.Schema, []arrow.RecordBatch{rec})
		start := time.Now()
		for attempt := 0; ; attempt++ {
			base := tbl
			tx := tbl.NewTransaction()
			err = tx.AppendTable(ctx, at, int64(o.RowsPerFlush), iceberg.Properties{lakeformat.PropSourceLSN: strconv.FormatInt(g.LSN+1, 10)})
			if err == nil {
				err = tx.SetProperties(iceberg.Properties{lakeformat.PropSourceLSN: strconv.FormatInt(g.LSN+1, 10)})
			}
			if err == nil {
				tbl, err = tx.Commit(ctx)
			}
			if err == nil || !ingest.LostRace(ctx, cat.Iceberg(), base, err) || attempt > 5 {
				break
			}
			if tbl, err = cat.Iceberg().LoadTable(ctx, ident); err != nil {
				break
			}
		}
		commits = append(commits, time.Since(start))
		at.Release()
		rec.Release()
		if err != nil {
			return out, fmt.Errorf("flush %d: %w", i, err)
		}
		if i%o.CompactEvery == 0 {
			start := time.Now()
			if _, err := c.Compact(ctx, ref); err != nil {
				return out, fmt.Errorf("compaction after flush %d: %w", i, err)
			}
			passes = append(passes, time.Since(start))
			if tbl, err = cat.Iceberg().LoadTable(ctx, ident); err != nil {
				return out, err
			}
		}
		if i%o.ReportEvery == 0 || i == o.Flushes {
			p := MetadataPoint{Flushes: i, Snapshots: len(tbl.Metadata().Snapshots())}
			if st, err := os.Stat(strings.TrimPrefix(tbl.MetadataLocation(), "file://")); err == nil {
				p.MetadataBytes = st.Size()
			}
			tasks, err := tbl.Scan().PlanFiles(ctx)
			if err != nil {
				return out, err
			}
			p.DataFiles = len(tasks)
			slices.Sort(commits)
			p.CommitP50, p.CommitP99 = commits[len(commits)/2], commits[len(commits)*99/100]
			var sum time.Duration
			for _, d := range passes {
				sum += d
			}
			if len(passes) > 0 {
				p.CompactMean = sum / time.Duration(len(passes))
			}
			commits, passes = commits[:0], passes[:0]
			out = append(out, p)
			o.Logger.Info("metadata", "flushes", p.Flushes, "metadata_bytes", p.MetadataBytes, "snapshots", p.Snapshots,
				"files", p.DataFiles, "commit_p50", p.CommitP50, "commit_p99", p.CommitP99, "compact_mean", p.CompactMean)
		}
	}
	return out, nil
}

// PrintMetadata writes the points as a table.
func PrintMetadata(w io.Writer, points []MetadataPoint) {
	fmt.Fprintf(w, "%8s %14s %9s %6s %12s %12s %14s\n", "flushes", "metadata KiB", "snapshots", "files", "commit p50", "commit p99", "compact mean")
	for _, p := range points {
		fmt.Fprintf(w, "%8d %14.1f %9d %6d %12s %12s %14s\n", p.Flushes, float64(p.MetadataBytes)/1024, p.Snapshots, p.DataFiles,
			p.CommitP50.Round(100*time.Microsecond), p.CommitP99.Round(100*time.Microsecond), p.CompactMean.Round(time.Millisecond))
	}
}
