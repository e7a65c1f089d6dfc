package compact

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

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
func scanSchema(scan *table.Scan) (*arrow.Schema, error) {
	proj, err := scan.Projection()
	if err != nil {
		return nil, err
	}
	return table.SchemaToArrowSchema(proj, nil, false, false)
}
