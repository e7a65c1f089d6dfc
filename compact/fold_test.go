package compact

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdclake/cdclake/lakeformat"
)

// row is a test row of a table (id int32, big text, val text).
type row struct {
	ID       int32
	Big, Val string // "-" is NULL
	LSN      int64  // snapshot rows: _cdc_lsn
}

// chg is a test changelog row.
type chg struct {
	Op       string
	LSN, Seq int64
	ID       int32
	Big, Val string // "-" is NULL
	Unsent   []string
}

var testOut = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "big", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "val", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: lakeformat.ColLSN, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

func appendStr(b *array.StringBuilder, s string) {
	if s == "-" {
		b.AppendNull()
	} else {
		b.Append(s)
	}
}

func baseRecord(rows []row) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testOut)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int32Builder).Append(r.ID)
		appendStr(b.Field(1).(*array.StringBuilder), r.Big)
		appendStr(b.Field(2).(*array.StringBuilder), r.Val)
		b.Field(3).(*array.Int64Builder).Append(r.LSN)
	}
	return b.NewRecordBatch()
}

func changeRecord(chgs []chg) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "big", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "val", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: lakeformat.ColOp, Type: arrow.BinaryTypes.String},
		{Name: lakeformat.ColLSN, Type: arrow.PrimitiveTypes.Int64},
		{Name: lakeformat.ColSeq, Type: arrow.PrimitiveTypes.Int64},
		{Name: lakeformat.ColUnchanged, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, c := range chgs {
		if c.Op == "t" {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int32Builder).Append(c.ID)
		}
		appendStr(b.Field(1).(*array.StringBuilder), c.Big)
		appendStr(b.Field(2).(*array.StringBuilder), c.Val)
		b.Field(3).(*array.StringBuilder).Append(c.Op)
		b.Field(4).(*array.Int64Builder).Append(c.LSN)
		b.Field(5).(*array.Int64Builder).Append(c.Seq)
		lb := b.Field(6).(*array.ListBuilder)
		if len(c.Unsent) == 0 {
			lb.AppendNull()
		} else {
			lb.Append(true)
			for _, u := range c.Unsent {
				lb.ValueBuilder().(*array.StringBuilder).Append(u)
			}
		}
	}
	return b.NewRecordBatch()
}

func recordRows(rec arrow.RecordBatch) []row {
	var out []row
	str := func(a arrow.Array, i int) string {
		if a.IsNull(i) {
			return "-"
		}
		return a.(*array.String).Value(i)
	}
	idx := func(name string) int { return rec.Schema().FieldIndices(name)[0] }
	for i := 0; i < int(rec.NumRows()); i++ {
		out = append(out, row{
			ID:  rec.Column(idx("id")).(*array.Int32).Value(i),
			Big: str(rec.Column(idx("big")), i),
			Val: str(rec.Column(idx("val")), i),
			LSN: rec.Column(idx(lakeformat.ColLSN)).(*array.Int64).Value(i),
		})
	}
	return out
}

func TestApplyChanges(t *testing.T) {
	base := []row{{1, "B1", "a", 5}, {2, "B2", "b", 5}, {3, "B3", "c", 5}}
	key := []string{"big", "val"} // non-key columns of a key-only delete
	cases := []struct {
		name    string
		base    []row
		changes []chg
		want    []row
	}{
		{"insert update delete", base, []chg{
			{Op: "c", LSN: 10, ID: 4, Big: "B4", Val: "d"},
			{Op: "u", LSN: 11, ID: 1, Big: "X", Val: "aa"},
			{Op: "d", LSN: 12, ID: 2, Big: "-", Val: "-", Unsent: key},
		}, []row{{1, "X", "aa", 11}, {3, "B3", "c", 5}, {4, "B4", "d", 10}}},
		{"changes out of order are sorted", base, []chg{
			{Op: "u", LSN: 11, Seq: 1, ID: 1, Big: "B1", Val: "second"},
			{Op: "u", LSN: 11, Seq: 0, ID: 1, Big: "B1", Val: "first"},
		}, []row{{1, "B1", "second", 11}, {2, "B2", "b", 5}, {3, "B3", "c", 5}}},
		{"unchanged TOAST from the snapshot", base, []chg{
			{Op: "u", LSN: 10, ID: 2, Big: "-", Val: "bb", Unsent: []string{"big"}},
		}, []row{{1, "B1", "a", 5}, {2, "B2", "bb", 10}, {3, "B3", "c", 5}}},
		{"unchanged TOAST through a chain of updates", base, []chg{
			{Op: "u", LSN: 10, ID: 1, Big: "-", Val: "x", Unsent: []string{"big"}},
			{Op: "u", LSN: 11, ID: 1, Big: "NEW", Val: "y"},
			{Op: "u", LSN: 12, ID: 1, Big: "-", Val: "z", Unsent: []string{"big"}},
		}, []row{{1, "NEW", "z", 12}, {2, "B2", "b", 5}, {3, "B3", "c", 5}}},
		{"key change keeps unchanged TOAST of the old key", base, []chg{
			{Op: "d", LSN: 10, Seq: 0, ID: 2, Big: "-", Val: "-", Unsent: key},
			{Op: "u", LSN: 10, Seq: 1, ID: 7, Big: "-", Val: "moved", Unsent: []string{"big"}},
		}, []row{{1, "B1", "a", 5}, {3, "B3", "c", 5}, {7, "B2", "moved", 10}}},
		{"key change after an update in the batch", base, []chg{
			{Op: "u", LSN: 9, ID: 2, Big: "B2x", Val: "b"},
			{Op: "d", LSN: 10, Seq: 0, ID: 2, Big: "-", Val: "-", Unsent: key},
			{Op: "u", LSN: 10, Seq: 1, ID: 8, Big: "-", Val: "m", Unsent: []string{"big"}},
		}, []row{{1, "B1", "a", 5}, {3, "B3", "c", 5}, {8, "B2x", "m", 10}}},
		{"key moved away and back", base, []chg{
			{Op: "d", LSN: 10, Seq: 0, ID: 1, Big: "-", Val: "-", Unsent: key},
			{Op: "u", LSN: 10, Seq: 1, ID: 9, Big: "-", Val: "a9", Unsent: []string{"big"}},
			{Op: "d", LSN: 11, Seq: 0, ID: 9, Big: "-", Val: "-", Unsent: key},
			{Op: "u", LSN: 11, Seq: 1, ID: 1, Big: "-", Val: "a1", Unsent: []string{"big"}},
		}, []row{{1, "B1", "a1", 11}, {2, "B2", "b", 5}, {3, "B3", "c", 5}}},
		{"a delete then an update of another row is no key change", base, []chg{
			{Op: "d", LSN: 10, Seq: 0, ID: 1, Big: "-", Val: "-", Unsent: key},
			{Op: "u", LSN: 10, Seq: 1, ID: 2, Big: "-", Val: "b2", Unsent: []string{"big"}},
		}, []row{{2, "B2", "b2", 10}, {3, "B3", "c", 5}}},
		{"REPLICA IDENTITY FULL: delete and update of the same key keep unchanged TOAST", base, []chg{
			// as ingest wrote every update of a FULL table before it
			// compared primary keys: the old row whole, then the new one
			{Op: "d", LSN: 10, Seq: 0, ID: 2, Big: "B2", Val: "b"},
			{Op: "u", LSN: 10, Seq: 1, ID: 2, Big: "-", Val: "b2", Unsent: []string{"big"}},
			{Op: "c", LSN: 11, Seq: 0, ID: 5, Big: "B5", Val: "e"},
			{Op: "d", LSN: 12, Seq: 0, ID: 5, Big: "B5", Val: "e"},
			{Op: "u", LSN: 12, Seq: 1, ID: 5, Big: "-", Val: "e2", Unsent: []string{"big"}},
		}, []row{{1, "B1", "a", 5}, {2, "B2", "b2", 10}, {3, "B3", "c", 5}, {5, "B5", "e2", 12}}},
		{"REPLICA IDENTITY FULL: key change takes the old row's values", nil, []chg{
			{Op: "d", LSN: 10, Seq: 0, ID: 2, Big: "OLD", Val: "b"},
			{Op: "u", LSN: 10, Seq: 1, ID: 7, Big: "-", Val: "moved", Unsent: []string{"big"}},
		}, []row{{7, "OLD", "moved", 10}}},
		{"truncate drops the snapshot and earlier changes", base, []chg{
			{Op: "c", LSN: 10, ID: 5, Big: "B5", Val: "e"},
			{Op: "t", LSN: 11, Big: "-", Val: "-"},
			{Op: "c", LSN: 12, ID: 6, Big: "B6", Val: "f"},
			{Op: "u", LSN: 13, ID: 6, Big: "-", Val: "ff", Unsent: []string{"big"}},
		}, []row{{6, "B6", "ff", 13}}},
		{"insert then delete in one batch", base, []chg{
			{Op: "c", LSN: 10, ID: 5, Big: "B5", Val: "e"},
			{Op: "d", LSN: 11, ID: 5, Big: "-", Val: "-", Unsent: key},
			{Op: "d", LSN: 12, ID: 42, Big: "-", Val: "-", Unsent: key},
		}, base},
		{"delete and insert again", base, []chg{
			{Op: "d", LSN: 10, ID: 3, Big: "-", Val: "-", Unsent: key},
			{Op: "c", LSN: 11, ID: 3, Big: "-", Val: "new"},
		}, []row{{1, "B1", "a", 5}, {2, "B2", "b", 5}, {3, "-", "new", 11}}},
		{"snapshot reads upsert", nil, []chg{
			{Op: "r", LSN: 10, ID: 2, Big: "R2", Val: "r"},
			{Op: "r", LSN: 10, Seq: 1, ID: 1, Big: "R1", Val: "r"},
		}, []row{{1, "R1", "r", 10}, {2, "R2", "r", 10}}},
		{"unsent column of an unknown row is NULL", nil, []chg{
			{Op: "u", LSN: 10, ID: 1, Big: "-", Val: "v", Unsent: []string{"big"}},
		}, []row{{1, "-", "v", 10}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b arrow.RecordBatch
			if tc.base != nil {
				b = baseRecord(tc.base)
				defer b.Release()
			}
			ch := changeRecord(tc.changes)
			defer ch.Release()
			out, err := applyChanges(context.Background(), testOut, []string{"id"}, b, ch)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			got := recordRows(out)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestFoldRejectsUnknownOp(t *testing.T) {
	ch := changeRecord([]chg{{Op: "x", LSN: 1, ID: 1, Big: "-", Val: "-"}})
	defer ch.Release()
	_, err := applyChanges(context.Background(), testOut, []string{"id"}, nil, ch)
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("err = %v, want one naming the op", err)
	}
}
