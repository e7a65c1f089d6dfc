package compact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/gcerrors"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// mergeHour rewrites the small files of one changelog hour as larger
// files sorted by (_cdc_lsn, _cdc_seq), in a "replace" snapshot: the rows
// do not change. Ingest appends meanwhile; a lost commit is staged again
// on the new state, the files already written are kept.
func (c *Compactor) mergeHour(ctx context.Context, ref TableRef, m Merge, res *Result) error {
	ident := lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name)
	tbl, err := c.cat.Iceberg().LoadTable(ctx, ident)
	if err != nil {
		return fmt.Errorf("load changelog of %s: %w", ref, err)
	}
	old, ok, err := liveFiles(ctx, tbl, m.Files)
	if err != nil || !ok {
		return err // !ok: merged by someone else meanwhile
	}
	scan := tbl.Scan(table.WithSnapshotID(currentID(tbl)))
	recs, err := readTasks(ctx, scan, old)
	if err != nil {
		return fmt.Errorf("read changelog files of %s: %w", ref, err)
	}
	sc, err := scanSchema(scan)
	if err != nil {
		return err
	}
	rec, err := concatRecords(sc, recs)
	if err != nil {
		return err
	}
	sorted, err := sortByLSN(ctx, rec)
	rec.Release()
	if err != nil {
		return fmt.Errorf("sort changelog rows of %s: %w", ref, err)
	}
	defer sorted.Release()
	var rows, size int64
	for _, f := range m.Files {
		rows, size = rows+f.Rows, size+f.Bytes
	}
	perFile := max(1, c.o.ChangelogFileSize/max(1, size/max(1, rows)))
	added, err := writeFiles(ctx, tbl, sorted, perFile, table.WithClusteredWrite())
	cleanup := func() {
		if fs, err := tbl.FS(ctx); err == nil {
			for _, df := range added {
				_ = fs.Remove(df.FilePath())
			}
		}
	}
	if err != nil {
		cleanup()
		return fmt.Errorf("write merged changelog files of %s: %w", ref, err)
	}
	if len(added) == 0 {
		return nil // empty files: nothing worth a commit
	}
	for attempt := 0; ; attempt++ {
		tx := tbl.NewTransaction()
		rw := tx.NewRewrite(iceberg.Properties{lakeformat.PropSourceLSN: tbl.Properties()[lakeformat.PropSourceLSN]})
		for _, t := range old {
			rw.DeleteFile(t.File)
		}
		for _, df := range added {
			rw.AddDataFile(df)
		}
		err = rw.Commit(ctx)
		if err == nil {
			_, err = tx.Commit(ctx)
		}
		if err == nil {
			break
		}
		// did it land anyway? (keep the files when that is unknown)
		if tbl, err2 := c.cat.Iceberg().LoadTable(ctx, ident); err2 != nil {
			return fmt.Errorf("commit merged changelog files of %s (outcome unknown): %w", ref, err)
		} else if _, ok, err2 := liveFiles(ctx, tbl, []ChangeFile{{Path: added[0].FilePath()}}); err2 != nil {
			return fmt.Errorf("commit merged changelog files of %s (outcome unknown): %w", ref, err)
		} else if ok {
			break
		}
		if !c.lostRace(ctx, tbl, err) || attempt+1 >= c.o.Retries {
			cleanup()
			return fmt.Errorf("commit merged changelog files of %s: %w", ref, err)
		}
		c.o.Metrics.Conflicts.Inc()
		if err := sleep(ctx, attempt); err != nil {
			cleanup()
			return err
		}
		if tbl, err = c.cat.Iceberg().LoadTable(ctx, ident); err != nil {
			return fmt.Errorf("load changelog of %s: %w", ref, err)
		}
		if old, ok, err = liveFiles(ctx, tbl, m.Files); err != nil || !ok {
			cleanup() // the files were merged by someone else: ours are not used
			return err
		}
	}
	res.MergedFiles += len(old)
	c.o.Metrics.Files.WithLabelValues("merged").Add(float64(len(old)))
	c.o.Metrics.Rows.WithLabelValues("merged").Add(float64(sorted.NumRows()))
	c.o.Logger.Info("merged changelog files", "table", ref.String(), "hour", time.Unix(m.Hour*3600, 0).UTC().Format("2006-01-02T15"),
		"files", len(old), "into", len(added), "rows", sorted.NumRows())
	return nil
}

// liveFiles returns the scan tasks of the given files in tbl's current
// snapshot; ok is false when one of them is gone.
func liveFiles(ctx context.Context, tbl *table.Table, files []ChangeFile) ([]table.FileScanTask, bool, error) {
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("list changelog files: %w", err)
	}
	byPath := make(map[string]table.FileScanTask, len(tasks))
	for _, t := range tasks {
		byPath[t.File.FilePath()] = t
	}
	out := make([]table.FileScanTask, 0, len(files))
	for _, f := range files {
		t, ok := byPath[f.Path]
		if !ok {
			return nil, false, nil
		}
		out = append(out, t)
	}
	return out, true, nil
}

// sortByLSN orders a changelog record by (_cdc_lsn, _cdc_seq).
func sortByLSN(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	cs, err := newChangeSet(rec)
	if err != nil {
		return nil, err
	}
	idx := make([]int64, cs.n)
	for i := range idx {
		idx[i] = int64(i)
	}
	sort.SliceStable(idx, func(a, b int) bool {
		i, j := int(idx[a]), int(idx[b])
		if li, lj := cs.lsn.Value(i), cs.lsn.Value(j); li != lj {
			return li < lj
		}
		return cs.seq.Value(i) < cs.seq.Value(j)
	})
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	ib.AppendValues(idx, nil)
	ia := ib.NewArray()
	defer ia.Release()
	cols := make([]arrow.Array, rec.NumCols())
	for i := range cols {
		if cols[i], err = compute.TakeArray(ctx, rec.Column(i), ia); err != nil {
			return nil, err
		}
	}
	out := array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

// expire removes a table's snapshots older than before (never the
// current one) with the manifest lists and manifests only they used.
// Data files they alone referenced are left to orphan cleanup, which
// deletes them once OrphanAge old, so a reader that planned on an expired
// snapshot keeps its files for about that long.
func (c *Compactor) expire(ctx context.Context, ident table.Identifier, before time.Time) (int, error) {
	for attempt := 0; ; attempt++ {
		tbl, err := c.cat.Iceberg().LoadTable(ctx, ident)
		if err != nil {
			return 0, fmt.Errorf("load %v: %w", ident, err)
		}
		tx := tbl.NewTransaction()
		if err := tx.ExpireSnapshots(table.WithOlderThan(max(0, time.Since(before))), table.WithRetainLast(1),
			table.WithPostCommit(false)); err != nil {
			return 0, fmt.Errorf("expire snapshots of %v: %w", ident, err)
		}
		nt, err := tx.Commit(ctx)
		if err == nil {
			n := len(tbl.Metadata().Snapshots()) - len(nt.Metadata().Snapshots())
			if n > 0 {
				deleteExpiredMetadata(ctx, tbl, nt)
			}
			return n, nil
		}
		if !c.lostRace(ctx, tbl, err) || attempt+1 >= c.o.Retries {
			return 0, fmt.Errorf("expire snapshots of %v: %w", ident, err)
		}
		c.o.Metrics.Conflicts.Inc()
		if err := sleep(ctx, attempt); err != nil {
			return 0, err
		}
	}
}

// deleteExpiredMetadata deletes the manifest lists and manifests of the
// snapshots in pre that post no longer has, unless post still uses them.
// Failures are left to orphan cleanup.
func deleteExpiredMetadata(ctx context.Context, pre, post *table.Table) {
	fs, err := post.FS(ctx)
	if err != nil {
		return
	}
	kept := map[int64]bool{}
	used := map[string]bool{}
	for _, s := range post.Metadata().Snapshots() {
		kept[s.SnapshotID] = true
		used[s.ManifestList] = true
		mans, err := s.Manifests(fs)
		if err != nil {
			return // cannot tell what is still used
		}
		for _, m := range mans {
			used[m.FilePath()] = true
		}
	}
	for _, s := range pre.Metadata().Snapshots() {
		if kept[s.SnapshotID] {
			continue
		}
		mans, err := s.Manifests(fs)
		if err != nil {
			continue
		}
		for _, m := range mans {
			if !used[m.FilePath()] {
				used[m.FilePath()] = true // once
				_ = fs.Remove(m.FilePath())
			}
		}
		if !used[s.ManifestList] {
			_ = fs.Remove(s.ManifestList)
		}
	}
}

// orphans deletes files under a table's location that no snapshot or
// metadata file references and that were written OrphanAge or more
// before base (see orphanBase), read before the table; none when base is
// unknown (zero). Another compactor may expire snapshots (and delete
// their manifests) while the references are read: then it reloads and
// tries again.
func (c *Compactor) orphans(ctx context.Context, ident table.Identifier, base time.Time) (int, error) {
	if base.IsZero() {
		return 0, nil
	}
	for attempt := 0; ; attempt++ {
		tbl, err := c.cat.Iceberg().LoadTable(ctx, ident)
		if err != nil {
			return 0, fmt.Errorf("load %v: %w", ident, err)
		}
		res, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(time.Since(base)+c.o.OrphanAge))
		if err == nil {
			return len(res.DeletedFiles), nil
		}
		if !gone(err) || attempt+1 >= c.o.Retries {
			return 0, fmt.Errorf("delete orphan files of %v: %w", ident, err)
		}
		if err := sleep(ctx, attempt); err != nil {
			return 0, err
		}
	}
}

// orphanBase returns the time the unreferenced files of a table's
// changelog are aged from: now, or the start of the oldest write of its
// files that may still be in progress, whichever is earlier. Those are
//
//   - a copy of the table's rows (an initial snapshot or a reload)
//     recorded running: it writes its files from its start on and adds
//     them all in one commit at its end, hours later for a large table;
//   - the stream of the table's source: every file it has not committed
//     is newer than the last time it recorded its watermark (a batch's
//     files are written after the previous batch's watermark, and the
//     parts of a large transaction are staged, unreferenced, until the
//     transaction's end, with no watermark recorded meanwhile).
//
// Both records are read before the table: a write that ended before is
// referenced by the table read, one that starts later writes files newer
// than now. Those times are cdclake's clock, a file's is the object
// store's (and a file system's lags by a few milliseconds): they are
// taken writeClockSkew earlier. Snapshot tables are written by
// compaction alone, within a pass: their base is now.
func (c *Compactor) orphanBase(ctx context.Context, ref TableRef) (time.Time, error) {
	base := time.Now()
	rec, err := c.copyRecord(ctx, ref)
	if err != nil {
		return base, err
	}
	if rec != nil && rec.State == catalog.SnapshotRunning {
		if rec.StartedAt.IsZero() {
			return time.Time{}, nil // a start not recorded: no file is old enough
		}
		base = earlier(base, rec.StartedAt.Add(-writeClockSkew))
	}
	src, err := c.cat.Source(ctx, ref.Source)
	if errors.Is(err, catalog.ErrNoSuchSource) {
		return base, nil
	}
	if err != nil {
		return base, fmt.Errorf("read source %s: %w", ref.Source, err)
	}
	if !src.UpdatedAt.IsZero() {
		base = earlier(base, src.UpdatedAt.Add(-writeClockSkew))
	}
	return base, nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// writeClockSkew bounds the difference between cdclake's clock and the
// times the lake's storage gives its files.
const writeClockSkew = time.Minute

// gone reports, by its type, whether err is about a file that no longer
// exists, as when a concurrent expiry deleted the manifests of a snapshot
// being read. iceberg-go's file IO turns a missing file at open into
// fs.ErrNotExist, but a read of a file opened before it was deleted
// returns gocloud's error (NotFound) or, beneath it, S3's.
func gone(err error) bool {
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	return errors.Is(err, fs.ErrNotExist) || gcerrors.Code(err) == gcerrors.NotFound ||
		errors.As(err, &noKey) || errors.As(err, &notFound)
}
