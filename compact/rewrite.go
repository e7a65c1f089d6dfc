package compact

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/lakeformat"
)

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
	defaults    map[string]lakeformat.ColumnDefault
	fill        []string // columns whose defaults the files read lack
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
			for i := range recs {
				if recs[i], err = fillDefaults(ctx, withColumns(recs[i], rw.outSchema, rw.fill), rw.defaults, rw.fill); err != nil {
					for _, r := range recs[i+1:] {
						r.Release()
					}
					for _, r := range recs[:i] {
						r.Release()
					}
					for _, rs := range bySlot {
						for _, r := range rs {
							r.Release()
						}
					}
					return fmt.Errorf("fill defaults: %w", err)
				}
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
