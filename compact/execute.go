package compact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
)

// errStale reports a plan whose base changed under it (another compactor
// committed): plan again.
var errStale = errors.New("the table changed since it was planned")

// snapshotProps are set on every snapshot table.
var snapshotProps = iceberg.Properties{
	"format-version":                             "2",
	"write.parquet.compression-codec":            "zstd",
	"write.parquet.compression-level":            "1",
	"commit.manifest-merge.enabled":              "true",
	"commit.manifest.min-count-to-merge":         "10",
	"write.metadata.delete-after-commit.enabled": "true",
	"write.metadata.previous-versions-max":       "10",
}

const batchRows = 64 << 10 // rows per record batch handed to the Parquet writer

// compactTable applies the plan's changes to the snapshot table in one
// commit.
func (c *Compactor) compactTable(ctx context.Context, p Plan, res *Result) error {
	log := c.o.Logger.With("table", p.Table.String())
	t, err := c.loadTables(ctx, p.Table)
	if err != nil {
		return err
	}
	keys := primaryKey(t.changelog)
	switch {
	case p.Create && t.snapshot != nil, !p.Create && t.snapshot == nil:
		return errStale
	case p.Create:
		if t.snapshot, err = createSnapshotTable(ctx, c, p.Table, t.changelog, keys); err != nil {
			return err
		}
	case currentID(t.snapshot) != p.SnapshotID:
		return errStale
	}
	if len(p.AddColumns) > 0 {
		if t.snapshot, err = addColumns(ctx, t.snapshot, t.changelog, p.AddColumns); err != nil {
			return fmt.Errorf("add columns %v to %s: %w", p.AddColumns, p.Table, err)
		}
	}

	// the changes, in one record
	start := time.Now()
	filter := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference(ingest.ColLSN), int64(p.From)),
		iceberg.LessThan(iceberg.Reference(ingest.ColLSN), int64(p.To)))
	var fields []string // all but the columns compaction does not use
	for _, f := range t.changelog.Schema().Fields() {
		if f.Name != ingest.ColXID && f.Name != ingest.ColCommitTS {
			fields = append(fields, f.Name)
		}
	}
	changes, err := readAll(ctx, t.changelog.Scan(table.WithSnapshotID(p.ChangelogSnapshotID),
		table.WithRowFilter(filter), table.WithSelectedFields(fields...)))
	if err != nil {
		return fmt.Errorf("read changes of %s: %w", p.Table, err)
	}
	defer changes.Release()
	cs, err := newChangeSet(changes)
	if err != nil {
		return fmt.Errorf("read changes of %s: %w", p.Table, err)
	}
	outSchema, err := table.SchemaToArrowSchema(t.snapshot.Schema(), nil, true, false)
	if err != nil {
		return err
	}
	outCols := make([]string, outSchema.NumFields())
	for i, f := range outSchema.Fields() {
		outCols[i] = f.Name
	}
	f, err := fold(cs, keys, outCols)
	if err != nil {
		return fmt.Errorf("apply changes of %s: %w", p.Table, err)
	}
	res.ChangeRows = int64(cs.n)
	log.Info("changes read", "rows", cs.n, "keys", len(f.keys), "truncated", f.truncated,
		"from_lsn", p.From, "to_lsn", p.To, "elapsed", time.Since(start).Round(time.Millisecond))

	// route the changed keys to the files holding their key ranges
	var baseFiles []DataFile
	var tasks []table.FileScanTask
	if p.SnapshotID != 0 {
		if baseFiles, tasks, err = snapshotFiles(ctx, t.snapshot, p.SnapshotID, keys); err != nil {
			return fmt.Errorf("list files of %s: %w", p.Table, err)
		}
	}
	sorted := make([]string, 0, len(f.keys))
	for k := range f.keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	firsts := make([]string, len(sorted))
	for i, k := range sorted {
		firsts[i] = k[:f.keys[k].first]
	}
	var links [][2]int
	for _, l := range f.links {
		a, _ := slices.BinarySearch(sorted, l[0])
		b, _ := slices.BinarySearch(sorted, l[1])
		links = append(links, [2]int{a, b})
	}
	routeFiles := baseFiles
	if f.truncated {
		routeFiles = nil
	}
	slots, groups := route(routeFiles, firsts, links)

	rowsPerFile := c.rowsPerFile(baseFiles, p)
	var removed []iceberg.DataFile
	if f.truncated {
		for _, task := range tasks {
			removed = append(removed, task.File)
		}
	}
	for _, sl := range slots {
		for _, fi := range sl.files {
			removed = append(removed, tasks[fi].File)
		}
	}
	w := newAsyncWriter(ctx, t.snapshot, outSchema)
	rw := rewrite{scan: t.snapshot.Scan(table.WithSnapshotID(p.SnapshotID)), tasks: tasks, slots: slots,
		sorted: sorted, f: f, cs: cs, outSchema: outSchema, keys: keys, rowsPerFile: rowsPerFile, log: log}
	err = rw.run(ctx, groups, w, res)
	added, written, werr := w.close()
	res.WrittenRows = written
	if err == nil {
		err = werr
	}
	cleanup := func() {
		if fs, err := t.snapshot.FS(ctx); err == nil {
			for _, df := range added {
				_ = fs.Remove(df.FilePath())
			}
		}
	}
	if err != nil {
		cleanup()
		return fmt.Errorf("rewrite %s: %w", p.Table, err)
	}

	// publish: one snapshot replacing the rewritten files, with the watermark
	id := uuid.NewString()
	props := iceberg.Properties{PropSourceLSN: strconv.FormatUint(p.To, 10), PropCompactionID: id}
	tx := t.snapshot.NewTransaction()
	switch {
	case len(removed) > 0:
		err = tx.ReplaceDataFilesWithDataFiles(ctx, removed, added, props)
	case len(added) > 0:
		err = tx.AddDataFiles(ctx, added, props)
	default:
		err = tx.AddFiles(ctx, nil, props, false) // an empty snapshot records the watermark
	}
	if err == nil {
		pk, _ := json.Marshal(keys)
		err = tx.SetProperties(iceberg.Properties{PropSourceLSN: strconv.FormatUint(p.To, 10), PropPrimaryKey: string(pk)})
	}
	if err == nil {
		_, err = tx.Commit(ctx)
	}
	if err != nil {
		ok, known := landed(ctx, c, p.Table, id)
		switch {
		case ok:
			err = nil
		case !known: // keep the files: orphan cleanup removes them if unused
			return fmt.Errorf("commit %s (outcome unknown): %w", p.Table, err)
		case retryable(err):
			cleanup()
			return fmt.Errorf("%w: %v", errStale, err)
		default:
			cleanup()
			return fmt.Errorf("commit %s: %w", p.Table, err)
		}
	}
	res.FilesAdded, res.FilesRemoved, res.LSN = len(added), len(removed), p.To
	return nil
}

// rewrite merges the slots' files with their changes, group by group.
type rewrite struct {
	scan        *table.Scan
	tasks       []table.FileScanTask
	slots       []slot
	sorted      []string // changed keys, sorted
	f           *folded
	cs          *changeSet
	outSchema   *arrow.Schema
	keys        []string
	rowsPerFile int64
	log         *slog.Logger
}

func (rw *rewrite) run(ctx context.Context, groups [][]int, w *asyncWriter, res *Result) error {
	lastLog := time.Now()
	for gi, g := range groups {
		bySlot := map[int][]arrow.RecordBatch{}
		for _, s := range g {
			var ts []table.FileScanTask
			for _, fi := range rw.slots[s].files {
				ts = append(ts, rw.tasks[fi])
			}
			if len(ts) == 0 {
				continue
			}
			recs, err := readTasks(ctx, rw.scan, ts)
			if err != nil {
				for _, rs := range bySlot {
					for _, r := range rs {
						r.Release()
					}
				}
				return fmt.Errorf("read files: %w", err)
			}
			bySlot[s] = recs
		}
		bs, err := newBaseSet(rw.outSchema, rw.keys, bySlot, rw.f)
		if err != nil {
			return fmt.Errorf("index rows: %w", err)
		}
		res.RewrittenRows += int64(bs.n)
		outs := make([]*slotOut, len(g))
		for i, s := range g {
			keyNames := make([]string, len(rw.slots[s].keys))
			for j, k := range rw.slots[s].keys {
				keyNames[j] = rw.sorted[k]
			}
			outs[i] = buildSlot(bs, s, keyNames, rw.f, rw.outSchema.NumFields())
		}
		if err := bs.combine(ctx, rw.outSchema, rw.cs, outs); err != nil {
			bs.release()
			return err
		}
		for _, so := range outs {
			for _, r := range splitRows(int64(len(so.src)), rw.rowsPerFile) {
				ch := w.file()
				if ch == nil {
					bs.release()
					return nil // the writer failed: close reports why
				}
				for a := int(r[0]); a < int(r[1]); a += batchRows {
					rec, err := so.record(ctx, rw.outSchema, bs, a, min(a+batchRows, int(r[1])))
					if err != nil {
						close(ch)
						bs.release()
						return err
					}
					ch <- rec
				}
				close(ch)
			}
		}
		bs.release()
		if time.Since(lastLog) > 5*time.Second {
			rw.log.Info("compacting", "groups_done", gi+1, "groups", len(groups), "rows_read", res.RewrittenRows)
			lastLog = time.Now()
		}
	}
	return nil
}

// asyncWriter writes data files in a goroutine, so that merging the next
// rows overlaps writing these. A file is a channel of record batches.
type asyncWriter struct {
	files  chan chan arrow.RecordBatch
	done   chan struct{}
	failed atomic.Bool
	added  []iceberg.DataFile
	rows   int64
	err    error
}

func newAsyncWriter(ctx context.Context, tbl *table.Table, sc *arrow.Schema) *asyncWriter {
	w := &asyncWriter{files: make(chan chan arrow.RecordBatch, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for batches := range w.files {
			if w.err == nil {
				seq := func(yield func(arrow.RecordBatch, error) bool) {
					for b := range batches {
						w.rows += b.NumRows()
						if !yield(b, nil) {
							return
						}
					}
				}
				o := table.WithTargetFileSize(1 << 62)
				for df, err := range table.WriteRecords(ctx, tbl, sc, seq, o) {
					if err != nil {
						w.err = err
						w.failed.Store(true)
						break
					}
					w.added = append(w.added, df)
				}
			}
			for b := range batches { // what the writer did not take
				b.Release()
			}
		}
	}()
	return w
}

// file starts a data file: send its batches (taken over) to the channel
// returned, then close it. It returns nil when writing failed.
func (w *asyncWriter) file() chan<- arrow.RecordBatch {
	if w.failed.Load() {
		return nil
	}
	ch := make(chan arrow.RecordBatch, 2)
	w.files <- ch
	return ch
}

// close waits for the files started and returns them.
func (w *asyncWriter) close() ([]iceberg.DataFile, int64, error) {
	close(w.files)
	<-w.done
	return w.added, w.rows, w.err
}

func currentID(tbl *table.Table) int64 {
	if s := tbl.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}

// landed reports whether a snapshot of compaction id is in the table (a
// commit that returned an error may have succeeded); known is false when
// the table could not be read.
func landed(ctx context.Context, c *Compactor, ref TableRef, id string) (ok, known bool) {
	tbl, err := c.cat.Iceberg().LoadTable(ctx, SnapshotIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return false, false
	}
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties[PropCompactionID] == id {
			return true, true
		}
	}
	return false, true
}

// rowsPerFile estimates how many rows make a file of Options.FileSize.
func (c *Compactor) rowsPerFile(files []DataFile, p Plan) int64 {
	var rows, size int64
	for _, f := range files {
		rows, size = rows+f.Rows, size+f.Bytes
	}
	if rows < 1000 {
		rows, size = 0, 0
		for _, f := range p.ChangeFiles {
			rows, size = rows+f.Rows, size+f.Bytes
		}
	}
	perRow := int64(64)
	if rows > 0 && size > 0 {
		perRow = max(1, size/rows)
	}
	return max(1, c.o.FileSize/perRow)
}

// createSnapshotTable creates the snapshot table of a changelog: its
// source columns and _cdc_lsn, unpartitioned (files hold key ranges).
func createSnapshotTable(ctx context.Context, c *Compactor, ref TableRef, cl *table.Table, keys []string) (*table.Table, error) {
	var fields []iceberg.NestedField
	for _, f := range cl.Schema().Fields() {
		if !cdcColumns[f.Name] || f.Name == ColLSN {
			f.Required = false
			fields = append(fields, f)
		}
	}
	props := iceberg.Properties{}
	for k, v := range snapshotProps {
		props[k] = v
	}
	pk, _ := json.Marshal(keys)
	props[PropPrimaryKey] = string(pk)
	props[PropSourceLSN] = "0"
	if len(keys) > 0 { // exact bounds of the first key column route changes to files
		props[table.MetricsModeColumnConfPrefix+"."+keys[0]] = "full"
	}
	ident := SnapshotIdent(ref.Source, ref.Schema, ref.Name)
	tbl, err := c.cat.Iceberg().CreateTable(ctx, ident, iceberg.NewSchema(0, fields...), icecat.WithProperties(props),
		icecat.WithLocation(catalog.TableLocation(c.cat.Warehouse(), ident)))
	if errors.Is(err, icecat.ErrTableAlreadyExists) {
		return nil, errStale
	}
	if err != nil {
		return nil, fmt.Errorf("create snapshot table %s: %w", ref, err)
	}
	c.o.Logger.Info("created snapshot table", "table", ref.String(), "keys", keys)
	return tbl, nil
}

// addColumns adds columns of the changelog to the snapshot table.
func addColumns(ctx context.Context, sn, cl *table.Table, cols []string) (*table.Table, error) {
	tx := sn.NewTransaction()
	us := tx.UpdateSchema(true, false)
	for _, name := range cols {
		f, ok := cl.Schema().FindFieldByName(name)
		if !ok {
			return nil, fmt.Errorf("column %s not in the changelog", name)
		}
		us = us.AddColumn([]string{name}, f.Type, f.Doc, false, nil)
	}
	if err := us.Commit(); err != nil {
		return nil, err
	}
	nt, err := tx.Commit(ctx)
	if err != nil && retryable(err) {
		return nil, fmt.Errorf("%w: %v", errStale, err)
	}
	return nt, err
}

// readAll reads a scan into one record.
func readAll(ctx context.Context, scan *table.Scan) (arrow.RecordBatch, error) {
	sc, it, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := collect(it)
	if err != nil {
		return nil, err
	}
	return concatRecords(sc, recs)
}

func readTasks(ctx context.Context, scan *table.Scan, tasks []table.FileScanTask) ([]arrow.RecordBatch, error) {
	_, it, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return nil, err
	}
	return collect(it)
}

func collect(it func(func(arrow.RecordBatch, error) bool)) ([]arrow.RecordBatch, error) {
	var recs []arrow.RecordBatch
	for rec, err := range it {
		if err != nil {
			for _, r := range recs {
				r.Release()
			}
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// concatRecords joins records of one schema into one record, releasing
// them column by column as it goes.
func concatRecords(sc *arrow.Schema, recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(recs) > 0 {
		sc = recs[0].Schema()
	}
	chunks := make([][]arrow.Array, sc.NumFields())
	var n int64
	for _, r := range recs {
		n += r.NumRows()
		for c := range chunks {
			a := r.Column(c)
			a.Retain()
			chunks[c] = append(chunks[c], a)
		}
		r.Release()
	}
	cols := make([]arrow.Array, sc.NumFields())
	var err error
	for c := range cols {
		if len(chunks[c]) == 0 {
			cols[c] = array.MakeArrayOfNull(memory.DefaultAllocator, sc.Field(c).Type, 0)
		} else if err == nil {
			if cols[c], err = array.Concatenate(chunks[c], memory.DefaultAllocator); err != nil {
				err = fmt.Errorf("concatenate column %s: %w", sc.Field(c).Name, err)
			}
		}
		for _, a := range chunks[c] {
			a.Release()
		}
	}
	if err != nil {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
		return nil, err
	}
	rec := array.NewRecordBatch(sc, cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}

// splitRows cuts n rows into ranges of about per rows, all of nearly
// the same size.
func splitRows(n, per int64) [][2]int64 {
	if n == 0 {
		return nil
	}
	files := (n + per - 1) / per
	size := (n + files - 1) / files
	var out [][2]int64
	for start := int64(0); start < n; start += size {
		out = append(out, [2]int64{start, min(start+size, n)})
	}
	return out
}

// writeFiles writes rec, in order, as files of about rowsPerFile rows.
func writeFiles(ctx context.Context, tbl *table.Table, rec arrow.RecordBatch, rowsPerFile int64, opts ...table.WriteRecordOption) ([]iceberg.DataFile, error) {
	var out []iceberg.DataFile
	for _, r := range splitRows(rec.NumRows(), rowsPerFile) {
		part := rec.NewSlice(r[0], r[1])
		dfs, err := writeFile(ctx, tbl, part, opts...)
		part.Release()
		out = append(out, dfs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// writeFile writes rec, in order, as one data file (one per partition).
func writeFile(ctx context.Context, tbl *table.Table, rec arrow.RecordBatch, opts ...table.WriteRecordOption) ([]iceberg.DataFile, error) {
	n := rec.NumRows()
	batches := func(yield func(arrow.RecordBatch, error) bool) {
		for s := int64(0); s < n; s += batchRows {
			if !yield(rec.NewSlice(s, min(s+batchRows, n)), nil) {
				return
			}
		}
	}
	var out []iceberg.DataFile
	o := append(slices.Clone(opts), table.WithTargetFileSize(1<<62))
	for df, err := range table.WriteRecords(ctx, tbl, rec.Schema(), batches, o...) {
		if err != nil {
			return out, err
		}
		out = append(out, df)
	}
	return out, nil
}

// scanSchema is the Arrow schema of a scan's rows.
func scanSchema(scan *table.Scan) (*arrow.Schema, bool, error) {
	proj, err := scan.Projection()
	if err != nil {
		return nil, false, err
	}
	sc, err := table.SchemaToArrowSchema(proj, nil, false, false)
	return sc, true, err
}
