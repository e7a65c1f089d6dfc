package compact

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/lakeformat"
)

// backlogCut returns the end of the oldest slice of a plan's changes that
// holds at most maxRows rows: a position To' <= p.To such that at most
// maxRows changes have From <= _cdc_lsn < To', but always past the oldest
// change's _cdc_lsn (a transaction is never split). It reads the _cdc_lsn
// column only, keeping the maxRows smallest values, so its memory is
// bounded by maxRows whatever the backlog; and only below a bound the
// file statistics give (files wholly in the range that hold maxRows rows
// together), so that applying a backlog slice by slice does not read its
// positions over and over.
func backlogCut(ctx context.Context, cl *table.Table, p Plan, maxRows int64) (uint64, error) {
	bound := p.To
	var whole []ChangeFile // files with all their rows at or past From
	for _, f := range p.ChangeFiles {
		if f.MaxLSN >= f.MinLSN && f.MinLSN >= int64(p.From) {
			whole = append(whole, f)
		}
	}
	slices.SortFunc(whole, func(a, b ChangeFile) int { return cmp.Compare(a.MaxLSN, b.MaxLSN) })
	var rows int64
	for _, f := range whole {
		if rows += f.Rows; rows >= maxRows {
			bound = min(bound, uint64(f.MaxLSN)+1)
			break
		}
	}
	filter := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference(lakeformat.ColLSN), int64(p.From)),
		iceberg.LessThan(iceberg.Reference(lakeformat.ColLSN), int64(bound)))
	_, it, err := cl.Scan(table.WithSnapshotID(p.ChangelogSnapshotID), table.WithRowFilter(filter),
		table.WithSelectedFields(lakeformat.ColLSN)).ToArrowRecords(ctx)
	if err != nil {
		return 0, err
	}
	h := lsnHeap{max: int(maxRows)}
	var n int64
	first, second := int64(-1), int64(-1) // the two smallest distinct positions
	for rec, err := range it {
		if err != nil {
			return 0, err
		}
		col, ok := rec.Column(0).(*array.Int64)
		if !ok {
			rec.Release()
			return 0, fmt.Errorf("changelog column %s is %s, want int64", lakeformat.ColLSN, rec.Column(0).DataType())
		}
		for _, v := range col.Int64Values() {
			n++
			h.push(v)
			switch {
			case first < 0 || v < first:
				first, second = v, first
			case v > first && (second < 0 || v < second):
				second = v
			}
		}
		rec.Release()
	}
	switch {
	case n <= maxRows:
		return bound, nil
	case h.top() > first:
		// fewer than maxRows changes lie below the maxRows-th smallest
		return uint64(h.top()), nil
	case second >= 0:
		// the oldest transaction alone holds maxRows changes or more
		return uint64(second), nil
	}
	return bound, nil // one transaction below the bound
}

// lsnHeap keeps the max smallest values pushed (a max-heap).
type lsnHeap struct {
	max int
	v   []int64
}

func (h *lsnHeap) top() int64 { return h.v[0] }

func (h *lsnHeap) push(x int64) {
	if len(h.v) < h.max {
		h.v = append(h.v, x)
		for i := len(h.v) - 1; i > 0; {
			parent := (i - 1) / 2
			if h.v[parent] >= h.v[i] {
				break
			}
			h.v[parent], h.v[i] = h.v[i], h.v[parent]
			i = parent
		}
		return
	}
	if x >= h.v[0] {
		return
	}
	h.v[0] = x
	for i := 0; ; {
		l, r, big := 2*i+1, 2*i+2, i
		if l < len(h.v) && h.v[l] > h.v[big] {
			big = l
		}
		if r < len(h.v) && h.v[r] > h.v[big] {
			big = r
		}
		if big == i {
			return
		}
		h.v[i], h.v[big] = h.v[big], h.v[i]
		i = big
	}
}
