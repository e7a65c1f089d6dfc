package compact

import (
	"bytes"
	"math"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
)

// TestKeyOrder checks that encodings sort like the values and that a
// manifest bound of a value encodes like the value.
func TestKeyOrder(t *testing.T) {
	mem := memory.DefaultAllocator
	cases := []struct {
		name  string
		typ   iceberg.Type
		build func() arrow.Array // values in ascending order
		lits  []iceberg.Literal  // the same values as Iceberg literals
	}{
		{"int32", iceberg.PrimitiveTypes.Int32, func() arrow.Array {
			b := array.NewInt32Builder(mem)
			b.AppendValues([]int32{math.MinInt32, -2, -1, 0, 1, 300, math.MaxInt32}, nil)
			return b.NewArray()
		}, []iceberg.Literal{iceberg.Int32Literal(math.MinInt32), iceberg.Int32Literal(-2), iceberg.Int32Literal(-1),
			iceberg.Int32Literal(0), iceberg.Int32Literal(1), iceberg.Int32Literal(300), iceberg.Int32Literal(math.MaxInt32)}},
		{"int64", iceberg.PrimitiveTypes.Int64, func() arrow.Array {
			b := array.NewInt64Builder(mem)
			b.AppendValues([]int64{math.MinInt64, -1, 0, 1 << 40}, nil)
			return b.NewArray()
		}, []iceberg.Literal{iceberg.Int64Literal(math.MinInt64), iceberg.Int64Literal(-1), iceberg.Int64Literal(0), iceberg.Int64Literal(1 << 40)}},
		{"float64", iceberg.PrimitiveTypes.Float64, func() arrow.Array {
			b := array.NewFloat64Builder(mem)
			b.AppendValues([]float64{math.Inf(-1), -2.5, -0.5, 0, 0.25, 3, math.Inf(1)}, nil)
			return b.NewArray()
		}, []iceberg.Literal{iceberg.Float64Literal(math.Inf(-1)), iceberg.Float64Literal(-2.5), iceberg.Float64Literal(-0.5),
			iceberg.Float64Literal(0), iceberg.Float64Literal(0.25), iceberg.Float64Literal(3), iceberg.Float64Literal(math.Inf(1))}},
		{"string", iceberg.PrimitiveTypes.String, func() arrow.Array {
			b := array.NewStringBuilder(mem)
			b.AppendValues([]string{"", "\x00", "\x00a", "a", "a\x00", "ab", "b", "é"}, nil)
			return b.NewArray()
		}, []iceberg.Literal{iceberg.StringLiteral(""), iceberg.StringLiteral("\x00"), iceberg.StringLiteral("\x00a"),
			iceberg.StringLiteral("a"), iceberg.StringLiteral("a\x00"), iceberg.StringLiteral("ab"), iceberg.StringLiteral("b"), iceberg.StringLiteral("é")}},
		{"decimal", iceberg.DecimalTypeOf(20, 2), func() arrow.Array {
			b := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 20, Scale: 2})
			b.AppendValues([]decimal128.Num{decimal128.FromI64(-100000), decimal128.FromI64(-1), decimal128.FromI64(0),
				decimal128.FromI64(129), decimal128.FromI64(1 << 50)}, nil)
			return b.NewArray()
		}, []iceberg.Literal{dec(-100000), dec(-1), dec(0), dec(129), dec(1 << 50)}},
		{"date", iceberg.PrimitiveTypes.Date, func() arrow.Array {
			b := array.NewDate32Builder(mem)
			b.AppendValues([]arrow.Date32{-10, 0, 19000}, nil)
			return b.NewArray()
		}, []iceberg.Literal{iceberg.DateLiteral(-10), iceberg.DateLiteral(0), iceberg.DateLiteral(19000)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			arr := tc.build()
			defer arr.Release()
			enc, err := newKeyEncoder(arr)
			if err != nil {
				t.Fatal(err)
			}
			var encs [][]byte
			for i := 0; i < arr.Len(); i++ {
				e := enc(nil, i)
				encs = append(encs, e)
				raw, err := tc.lits[i].MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				b, ok := encodeBound(tc.typ, raw)
				if !ok || !bytes.Equal(b, e) {
					t.Errorf("value %d: bound encodes as %x (ok %v), value as %x", i, b, ok, e)
				}
			}
			if !sort.SliceIsSorted(encs, func(i, j int) bool { return bytes.Compare(encs[i], encs[j]) < 0 }) {
				t.Errorf("encodings out of order: %x", encs)
			}
		})
	}
}

func dec(v int64) iceberg.Literal {
	return iceberg.DecimalLiteral{Val: decimal128.FromI64(v), Scale: 2}
}

// TestCompositeKeyOrder checks that concatenated encodings order tuples.
func TestCompositeKeyOrder(t *testing.T) {
	tuples := [][2]string{{"a", "z"}, {"a\x00", "a"}, {"ab", ""}, {"b", "a"}}
	var encs [][]byte
	for _, tp := range tuples {
		encs = append(encs, appendBytes(appendBytes(nil, []byte(tp[0])), []byte(tp[1])))
	}
	for i := 1; i < len(encs); i++ {
		if bytes.Compare(encs[i-1], encs[i]) >= 0 {
			t.Errorf("%q encodes after %q", tuples[i-1], tuples[i])
		}
	}
}
