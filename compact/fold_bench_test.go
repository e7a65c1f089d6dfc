package compact

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkApplyChanges measures the merge step of compaction: a base of
// 100k rows and 10k changes (inserts, updates, a few deletes and unchanged
// TOAST updates) folded into the new state, in memory.
func BenchmarkApplyChanges(b *testing.B) {
	const baseRows, changes = 100_000, 10_000
	rows := make([]row, baseRows)
	for i := range rows {
		rows[i] = row{ID: int32(i), Big: fmt.Sprintf("big-%d", i), Val: "v", LSN: 5}
	}
	base := baseRecord(rows)
	defer base.Release()
	var chgs []chg
	for i := range changes {
		id := int32(i * 7 % (baseRows + changes))
		c := chg{Op: "u", LSN: int64(10 + i), ID: id, Big: "B", Val: "u"}
		switch i % 10 {
		case 0:
			c.Op = "d"
			c.Big, c.Val, c.Unsent = "-", "-", []string{"big", "val"}
		case 1:
			c.Big, c.Unsent = "-", []string{"big"}
		case 2:
			c.Op, c.ID = "c", int32(baseRows+i)
		}
		chgs = append(chgs, c)
	}
	ch := changeRecord(chgs)
	defer ch.Release()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := applyChanges(context.Background(), testOut, []string{"id"}, base, ch)
		if err != nil {
			b.Fatal(err)
		}
		if out.NumRows() < baseRows-changes {
			b.Fatalf("%d rows", out.NumRows())
		}
		out.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*changes), "ns/change")
}
