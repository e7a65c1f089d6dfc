package compact

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdclake/cdclake/lakeformat"
)

// Columns added with a constant default (lakeformat.ColumnDefault): the rows
// that predate such a column hold NULL in the lake but its default in
// PostgreSQL. Iceberg v2 has no initial-default, so compaction writes the
// default into the snapshot table: into every change row that predates
// the column, and, the first time it sees a default, into every snapshot
// row that does (rewriting every file once). The snapshot table's own
// cdclake.column-defaults property records the defaults it has applied.

// pendingDefaults returns the columns whose default the snapshot table
// has not applied yet, sorted.
func pendingDefaults(changelog, applied map[string]lakeformat.ColumnDefault) []string {
	var out []string
	for name, d := range changelog {
		a, ok := applied[name]
		if !ok || a.LSN != d.LSN || a.Seq != d.Seq || !bytes.Equal(a.Value, d.Value) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// fillDefaults returns rec with the named columns' defaults in the rows
// before each default's position: by (_cdc_lsn, _cdc_seq) when rec has
// _cdc_seq (changes), else by _cdc_lsn (snapshot rows). It takes rec over.
func fillDefaults(ctx context.Context, rec arrow.RecordBatch, defaults map[string]lakeformat.ColumnDefault, names []string) (arrow.RecordBatch, error) {
	sc := rec.Schema()
	lsnIdx := sc.FieldIndices(lakeformat.ColLSN)
	if len(names) == 0 || len(lsnIdx) != 1 || rec.NumRows() == 0 {
		return rec, nil
	}
	lsn, ok := rec.Column(lsnIdx[0]).(*array.Int64)
	if !ok {
		return nil, fmt.Errorf("column %s is not int64", lakeformat.ColLSN)
	}
	var seq *array.Int64
	if idx := sc.FieldIndices(lakeformat.ColSeq); len(idx) == 1 {
		seq, _ = rec.Column(idx[0]).(*array.Int64)
	}
	cols := slices.Clone(rec.Columns())
	var filled []arrow.Array
	defer func() {
		for _, a := range filled {
			a.Release()
		}
	}()
	changed := false
	for _, name := range names {
		d, ok := defaults[name]
		idx := sc.FieldIndices(name)
		if !ok || len(idx) != 1 {
			continue
		}
		before := func(i int) bool {
			l := lsn.Value(i)
			return l < d.LSN || (seq != nil && l == d.LSN && seq.Value(i) < d.Seq)
		}
		arr, err := fillBefore(ctx, cols[idx[0]], before, d)
		if err != nil {
			rec.Release()
			return nil, fmt.Errorf("default of column %s: %w", name, err)
		}
		if arr != nil {
			filled = append(filled, arr)
			cols[idx[0]] = arr
			changed = true
		}
	}
	if !changed {
		return rec, nil
	}
	out := array.NewRecordBatch(sc, cols, rec.NumRows())
	rec.Release()
	return out, nil
}

// withColumns returns rec with NULL columns for those of names that it
// lacks and sc has (files written before the column was added). It takes
// rec over.
func withColumns(rec arrow.RecordBatch, sc *arrow.Schema, names []string) arrow.RecordBatch {
	fields := slices.Clone(rec.Schema().Fields())
	cols := slices.Clone(rec.Columns())
	var added []arrow.Array
	for _, name := range names {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 || len(rec.Schema().FieldIndices(name)) > 0 {
			continue
		}
		f := sc.Field(idx[0])
		arr := array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, int(rec.NumRows()))
		added = append(added, arr)
		fields = append(fields, f)
		cols = append(cols, arr)
	}
	if len(added) == 0 {
		return rec
	}
	md := rec.Schema().Metadata()
	out := array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, rec.NumRows())
	rec.Release()
	for _, a := range added {
		a.Release()
	}
	return out
}

// fillBefore returns arr with d's value in the rows before reports, or
// nil when there are none.
func fillBefore(ctx context.Context, arr arrow.Array, before func(int) bool, d lakeformat.ColumnDefault) (arrow.Array, error) {
	n := arr.Len()
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	defer ib.Release()
	ib.Reserve(n)
	any := false
	for i := range n {
		if before(i) {
			ib.UnsafeAppend(int64(n)) // the default, appended after the rows
			any = true
		} else {
			ib.UnsafeAppend(int64(i))
		}
	}
	if !any {
		return nil, nil
	}
	def, _, err := array.FromJSON(memory.DefaultAllocator, arr.DataType(), bytes.NewReader(append(append([]byte("["), d.Value...), ']')))
	if err != nil {
		return nil, fmt.Errorf("read value %s as %s: %w", d.Value, arr.DataType(), err)
	}
	defer def.Release()
	all, err := array.Concatenate([]arrow.Array{arr, def}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer all.Release()
	idx := ib.NewArray()
	defer idx.Release()
	return compute.TakeArray(ctx, all, idx)
}
