package compact

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// baseSet is the rows of the snapshot files of one group of slots.
type baseSet struct {
	chunks  [][]arrow.Array // by output column, until combine
	cols    []arrow.Array   // after combine: the base rows, then the change rows used
	n       int             // base rows
	keys    keyArena
	slot    []int  // slot per row
	touched []bool // the row's key has changes
	rows    map[string]int32
}

// newBaseSet indexes the records read from each slot's files; it takes
// them over.
func newBaseSet(outSchema *arrow.Schema, keys []string, bySlot map[int][]arrow.RecordBatch, f *folded) (*baseSet, error) {
	bs := &baseSet{rows: map[string]int32{}, chunks: make([][]arrow.Array, outSchema.NumFields())}
	slots := make([]int, 0, len(bySlot))
	for s := range bySlot {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	defer func() {
		for _, recs := range bySlot {
			for _, r := range recs {
				r.Release()
			}
		}
	}()
	for _, s := range slots {
		for _, rec := range bySlot[s] {
			cols := map[string]arrow.Array{}
			for i, f := range rec.Schema().Fields() {
				cols[f.Name] = rec.Column(i)
			}
			for c, f := range outSchema.Fields() {
				arr, ok := cols[f.Name]
				switch {
				case !ok:
					arr = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, int(rec.NumRows()))
				case !arrow.TypeEqual(arr.DataType(), f.Type):
					// read in the type of the base snapshot's schema:
					// promote it (int to long, wider decimal, ...)
					cast, err := compute.CastArray(context.Background(), arr, compute.SafeCastOptions(f.Type))
					if err != nil {
						return nil, fmt.Errorf("column %s: %w", f.Name, err)
					}
					arr = cast
				default:
					arr.Retain()
				}
				bs.chunks[c] = append(bs.chunks[c], arr)
			}
			encs, err := keyEncoders(cols, keys)
			if err != nil {
				bs.release()
				return nil, err
			}
			for r := 0; r < int(rec.NumRows()); r++ {
				bs.keys.add(encs, r)
				bs.slot = append(bs.slot, s)
			}
		}
	}
	bs.n = len(bs.slot)
	bs.touched = make([]bool, bs.n)
	for r := range bs.n {
		k := bs.keys.key(r)
		if _, ok := f.keys[k]; ok {
			bs.touched[r] = true
			bs.rows[k] = int32(r)
		}
	}
	return bs, nil
}

// combine builds the group's columns: its base rows followed by the
// change rows its slots use, and points the slots' sources at them.
func (bs *baseSet) combine(ctx context.Context, outSchema *arrow.Schema, cs *changeSet, outs []*slotOut) error {
	pos := map[int32]int32{}
	var rows []int64
	direct := bs.n == 0 // no base: read the changes in place
	remap := func(src int32) int32 {
		if src >= 0 || src == srcNull {
			return src
		}
		r := -src - 2
		if direct {
			return r
		}
		p, ok := pos[r]
		if !ok {
			p = int32(len(rows))
			pos[r] = p
			rows = append(rows, int64(r))
		}
		return int32(bs.n) + p
	}
	for _, o := range outs {
		for i, src := range o.src {
			o.src[i] = remap(src)
		}
		for _, srcs := range o.cols {
			for c, src := range srcs {
				srcs[c] = remap(src)
			}
		}
	}
	mem := memory.DefaultAllocator
	bs.cols = make([]arrow.Array, outSchema.NumFields())
	if direct {
		for c, fld := range outSchema.Fields() {
			arr, err := changeColumn(ctx, cs, fld)
			if err != nil {
				return err
			}
			bs.cols[c] = arr
		}
		return nil
	}
	idx := int64Array(rows)
	defer idx.Release()
	for c, fld := range outSchema.Fields() {
		part, err := takeChanges(ctx, cs, fld, idx)
		if err != nil {
			return err
		}
		all, err := array.Concatenate(append(bs.chunks[c], part), mem)
		part.Release()
		for _, a := range bs.chunks[c] {
			a.Release()
		}
		bs.chunks[c] = nil
		if err != nil {
			return fmt.Errorf("concatenate column %s: %w", fld.Name, err)
		}
		bs.cols[c] = all
	}
	return nil
}

func (bs *baseSet) release() {
	for _, ch := range bs.chunks {
		for _, a := range ch {
			a.Release()
		}
	}
	bs.chunks = nil
	for _, c := range bs.cols {
		if c != nil {
			c.Release()
		}
	}
	bs.cols = nil
}

// slotOut is a slot's output rows in key order, as sources: src gives
// the source of every column of a row, cols of the rows whose columns
// come from different rows.
type slotOut struct {
	src  []int32
	cols map[int][]int32
}

// buildSlot merges the untouched base rows of slot s with the live last
// versions of the keys routed to it (sorted).
func buildSlot(bs *baseSet, s int, keys []string, f *folded, ncols int) *slotOut {
	var base []int32
	for r, sl := range bs.slot {
		if sl == s && !bs.touched[r] {
			base = append(base, int32(r))
		}
	}
	if !slices.IsSortedFunc(base, func(a, b int32) int { return strings.Compare(bs.keys.key(int(a)), bs.keys.key(int(b))) }) {
		slices.SortFunc(base, func(a, b int32) int { return strings.Compare(bs.keys.key(int(a)), bs.keys.key(int(b))) })
	}
	baseOf := func(k string) (int32, bool) { r, ok := bs.rows[k]; return r, ok }
	out := &slotOut{src: make([]int32, 0, len(base)+len(keys)), cols: map[int][]int32{}}
	emit := func(v *version) {
		if v.x == nil || len(v.x.unsent) == 0 {
			out.src = append(out.src, changeSrc(v.row))
			return
		}
		cs := make([]int32, ncols)
		for c := range cs {
			cs[c] = resolve(v, c, baseOf)
		}
		out.cols[len(out.src)] = cs
		out.src = append(out.src, srcNull)
	}
	i, j := 0, 0
	for i < len(base) || j < len(keys) {
		if j == len(keys) || (i < len(base) && bs.keys.key(int(base[i])) < keys[j]) {
			out.src = append(out.src, base[i])
			i++
			continue
		}
		if v := f.keys[keys[j]]; !v.deleted {
			emit(v)
		}
		j++
	}
	return out
}

// record materializes output rows [a, b) of a slot, once the group's
// columns are combined.
func (so *slotOut) record(ctx context.Context, outSchema *arrow.Schema, bs *baseSet, a, b int) (arrow.RecordBatch, error) {
	mem := memory.DefaultAllocator
	cols := make([]arrow.Array, outSchema.NumFields())
	release := func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}
	var shared arrow.Array // the indexes when no row takes columns from different rows
	for c, fld := range outSchema.Fields() {
		idx := shared
		if idx == nil {
			ib := array.NewInt64Builder(mem)
			ib.Reserve(b - a)
			for i := a; i < b; i++ {
				src := so.src[i]
				if srcs, ok := so.cols[i]; ok {
					src = srcs[c]
				}
				if src < 0 {
					ib.AppendNull()
				} else {
					ib.UnsafeAppend(int64(src))
				}
			}
			idx = ib.NewArray()
			ib.Release()
			if len(so.cols) == 0 {
				shared = idx
			}
		}
		var err error
		cols[c], err = compute.TakeArray(ctx, bs.cols[c], idx)
		if shared == nil {
			idx.Release()
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("take column %s: %w", fld.Name, err)
		}
	}
	if shared != nil {
		shared.Release()
	}
	rec := array.NewRecordBatch(outSchema, cols, int64(b-a))
	release()
	return rec, nil
}

// changeColumn returns the changelog column of an output field, cast to
// its type (NULL when the changelog lacks the column).
func changeColumn(ctx context.Context, cs *changeSet, fld arrow.Field) (arrow.Array, error) {
	arr, ok := cs.cols[fld.Name]
	if !ok {
		return array.MakeArrayOfNull(memory.DefaultAllocator, fld.Type, cs.n), nil
	}
	if arrow.TypeEqual(arr.DataType(), fld.Type) {
		arr.Retain()
		return arr, nil
	}
	cast, err := compute.CastArray(ctx, arr, compute.SafeCastOptions(fld.Type))
	if err != nil {
		return nil, fmt.Errorf("column %s: changelog type %s, snapshot type %s: %w", fld.Name, arr.DataType(), fld.Type, err)
	}
	return cast, nil
}

// takeChanges takes rows of the changelog column of an output field,
// cast to its type (NULL when the changelog lacks the column).
func takeChanges(ctx context.Context, cs *changeSet, fld arrow.Field, idx arrow.Array) (arrow.Array, error) {
	arr, ok := cs.cols[fld.Name]
	if !ok {
		return array.MakeArrayOfNull(memory.DefaultAllocator, fld.Type, idx.Len()), nil
	}
	taken, err := compute.TakeArray(ctx, arr, idx)
	if err != nil {
		return nil, fmt.Errorf("take column %s: %w", fld.Name, err)
	}
	if arrow.TypeEqual(taken.DataType(), fld.Type) {
		return taken, nil
	}
	cast, err := compute.CastArray(ctx, taken, compute.SafeCastOptions(fld.Type))
	taken.Release()
	if err != nil {
		return nil, fmt.Errorf("column %s: changelog type %s, snapshot type %s: %w", fld.Name, arr.DataType(), fld.Type, err)
	}
	return cast, nil
}

func int64Array(v []int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}
