package compact

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/lakeformat"
)

// Compactor compacts the tables of a lake: it turns changelogs into
// snapshot tables and keeps both tidy.
type Compactor struct {
	cat *catalog.Catalog
	o   Options

	mu        sync.Mutex
	orphansAt map[TableRef]time.Time // last orphan cleanup per table
}

// New returns a Compactor for the tables of cat.
func New(cat *catalog.Catalog, o Options) *Compactor {
	return &Compactor{cat: cat, o: o.withDefaults(), orphansAt: map[TableRef]time.Time{}}
}

// Result reports one table's compaction.
type Result struct {
	Table   TableRef
	Plan    Plan
	Skipped string // why the table was not compacted, "" when it was
	// LSN is the snapshot table's new watermark (0: unchanged).
	LSN uint64
	// ChangeRows changelog rows applied; RewrittenRows snapshot rows read
	// back from rewritten files; WrittenRows rows in the new files.
	ChangeRows, RewrittenRows, WrittenRows int64
	FilesAdded, FilesRemoved               int
	MergedFiles                            int // small changelog files merged
	ExpiredSnapshots                       int
	OrphanFiles                            int
	Duration                               time.Duration
	// Slices is the number of commits the changes took: more than one
	// when they were over Options.MaxChangeRows.
	Slices int
	// backlog: this commit applied the oldest Options.MaxChangeRows of
	// the changes; another follows.
	backlog bool
	// sliceRows is the most changes one commit applied.
	sliceRows int64
}

// RunOnce compacts every table once. A table's failure does not stop the
// others; the errors are returned together.
func (c *Compactor) RunOnce(ctx context.Context) ([]Result, error) {
	refs, err := c.Tables(ctx)
	if err != nil {
		return nil, err
	}
	var out []Result
	var errs []error
	for _, ref := range refs {
		res, err := c.Compact(ctx, ref)
		out = append(out, res)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out, errors.Join(errs...)
}

// Run compacts every table every Options.Interval until ctx is done; it
// logs failures and keeps going, and returns nil when cancelled.
func (c *Compactor) Run(ctx context.Context) error {
	for {
		if _, err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.o.Logger.Error("compaction pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.o.Interval):
		}
	}
}

// Compact plans and executes one table's compaction. A plan made stale by
// a concurrent compactor is planned again. Changes over
// Options.MaxChangeRows are applied in several commits, oldest first.
func (c *Compactor) Compact(ctx context.Context, ref TableRef) (Result, error) {
	start := time.Now()
	var res Result
	var err error
	for {
		var one Result
		one, err = c.compactOnce(ctx, ref)
		res = add(res, one)
		if err != nil || !one.backlog || ctx.Err() != nil {
			break
		}
		c.o.Logger.Info("backlog: applied the oldest changes, continuing", "table", ref.String(),
			"changes", one.ChangeRows, "lsn", one.LSN)
	}
	res.Table = ref
	res.Duration = time.Since(start)
	m := c.o.Metrics
	m.Duration.Observe(res.Duration.Seconds())
	switch {
	case err != nil:
		m.Runs.WithLabelValues("error").Inc()
		return res, fmt.Errorf("compact %s: %w", ref, err)
	case res.LSN == 0:
		m.Runs.WithLabelValues("noop").Inc()
	default:
		m.Runs.WithLabelValues("ok").Inc()
	}
	m.Rows.WithLabelValues("changes").Add(float64(res.ChangeRows))
	m.Rows.WithLabelValues("rewritten").Add(float64(res.RewrittenRows))
	m.Rows.WithLabelValues("written").Add(float64(res.WrittenRows))
	m.Files.WithLabelValues("added").Add(float64(res.FilesAdded))
	m.Files.WithLabelValues("removed").Add(float64(res.FilesRemoved))
	m.Files.WithLabelValues("orphan").Add(float64(res.OrphanFiles))
	if res.LSN > 0 || res.MergedFiles > 0 || res.ExpiredSnapshots > 0 || res.OrphanFiles > 0 {
		c.o.Logger.Info("compacted", "table", ref.String(), "lsn", res.LSN, "changes", res.ChangeRows,
			"rewritten_rows", res.RewrittenRows, "written_rows", res.WrittenRows,
			"files_added", res.FilesAdded, "files_removed", res.FilesRemoved, "merged_files", res.MergedFiles,
			"expired_snapshots", res.ExpiredSnapshots, "orphan_files", res.OrphanFiles,
			"elapsed", res.Duration.Round(time.Millisecond))
	}
	return res, nil
}

// compactOnce plans and executes one commit of a table's compaction,
// planning again when the plan went stale.
func (c *Compactor) compactOnce(ctx context.Context, ref TableRef) (Result, error) {
	var res Result
	var err error
	for attempt := 0; attempt < c.o.Retries; attempt++ {
		var st State
		if st, err = c.Load(ctx, ref); err != nil {
			break
		}
		res, err = c.Execute(ctx, c.o.Plan(st))
		if !errors.Is(err, errStale) && (err == nil || !gone(err)) {
			break
		}
		c.o.Metrics.Conflicts.Inc()
		c.o.Logger.Info("plan went stale, planning again", "table", ref.String(), "err", err)
		if err := sleep(ctx, attempt); err != nil {
			return res, err
		}
	}
	return res, err
}

// add sums the results of the commits of one table's compaction; the
// plan, watermark and skip reason are the last one's.
func add(sum, r Result) Result {
	r.ChangeRows += sum.ChangeRows
	r.RewrittenRows += sum.RewrittenRows
	r.WrittenRows += sum.WrittenRows
	r.FilesAdded += sum.FilesAdded
	r.FilesRemoved += sum.FilesRemoved
	r.MergedFiles += sum.MergedFiles
	r.ExpiredSnapshots += sum.ExpiredSnapshots
	r.OrphanFiles += sum.OrphanFiles
	if r.LSN == 0 {
		r.LSN = sum.LSN
	}
	r.sliceRows = max(sum.sliceRows, r.ChangeRows-sum.ChangeRows)
	r.Slices = sum.Slices
	if r.Plan.Compact {
		r.Slices++
	}
	return r
}

// Execute carries out a plan: the compaction in one commit, then the
// housekeeping of the changelog and the snapshot table.
func (c *Compactor) Execute(ctx context.Context, p Plan) (Result, error) {
	res := Result{Table: p.Table, Plan: p, Skipped: p.Skip}
	ref := p.Table
	if p.Skip != "" {
		c.o.Logger.Debug("not compacted", "table", ref.String(), "reason", p.Skip)
	}
	if p.Hold != 0 {
		c.o.Logger.Info("watermark held below a snapshot in progress", "table", ref.String(),
			"snapshot_lsn", p.Hold, "watermark", p.To)
	}
	if p.Compact {
		if err := c.compactTable(ctx, p, &res); err != nil {
			return res, err
		}
	}
	for _, m := range p.Merges {
		if err := c.mergeHour(ctx, ref, m, &res); err != nil {
			return res, err
		}
	}
	if !p.ExpireChangelogBefore.IsZero() {
		n, err := c.expire(ctx, lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name), p.ExpireChangelogBefore)
		if err != nil {
			return res, err
		}
		res.ExpiredSnapshots += n
	}
	if !p.ExpireSnapshotsBefore.IsZero() {
		n, err := c.expire(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name), p.ExpireSnapshotsBefore)
		if err != nil {
			return res, err
		}
		res.ExpiredSnapshots += n
	}
	if c.orphansDue(ref) {
		base, err := c.orphanBase(ctx, ref) // before the changelog is read
		if err != nil {
			return res, err
		}
		n, err := c.orphans(ctx, lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name), base)
		if err != nil {
			return res, err
		}
		res.OrphanFiles += n
		if p.Compact || p.SnapshotID != 0 {
			n, err := c.orphans(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name), time.Now())
			if err != nil {
				return res, err
			}
			res.OrphanFiles += n
		}
	}
	return res, nil
}

// orphansDue reports whether a table's orphan files are to be looked for
// now, and notes that they are.
func (c *Compactor) orphansDue(ref TableRef) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.o.OrphanInterval > 0 && time.Since(c.orphansAt[ref]) < c.o.OrphanInterval {
		return false
	}
	c.orphansAt[ref] = time.Now()
	return true
}

// retryable reports, by its type, whether a commit's error says it lost
// a race with another writer (ingest.Conflict) or that its plan went stale.
func retryable(err error) bool {
	return errors.Is(err, errStale) || ingest.Conflict(err)
}

// lostRace reports whether a commit of a transaction started from base
// lost a race with another writer: retryable, or the SQL catalog's untyped
// requirement failure, checked against the reloaded table
// (ingest.LostRace). Callers rule out first that the commit landed.
func (c *Compactor) lostRace(ctx context.Context, base *table.Table, err error) bool {
	return retryable(err) || ingest.LostRace(ctx, c.cat.Iceberg(), base, err)
}

// sleep waits before retry attempt+1: 50 ms, 100 ms, 200 ms ... up to 2 s.
func sleep(ctx context.Context, attempt int) error {
	d := min(50*time.Millisecond<<attempt, 2*time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
