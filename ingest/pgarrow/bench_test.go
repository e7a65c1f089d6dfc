package pgarrow

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// benchAppend appends the values round-robin, flushing the builder
// every 64k values as a batch writer would.
func benchAppend(b *testing.B, oid uint32, mod int32, values ...string) {
	c := mustColumn(b, oid, mod)
	texts := make([][]byte, len(values))
	size := 0
	for i, v := range values {
		texts[i] = []byte(v)
		size += len(v)
	}
	bld := array.NewBuilder(memory.DefaultAllocator, c.ArrowType())
	defer bld.Release()
	b.SetBytes(int64(size / len(values)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Append(bld, texts[i%len(texts)]); err != nil {
			b.Fatal(err)
		}
		if bld.Len() == 1<<16 {
			bld.NewArray().Release()
		}
	}
}

func BenchmarkAppendInt(b *testing.B) {
	benchAppend(b, oidInt4, -1, "1", "-42", "123456", "2147483647")
}

func BenchmarkAppendInt8(b *testing.B) {
	benchAppend(b, oidInt8, -1, "1234567890123", "-9223372036854775808")
}

func BenchmarkAppendNumeric(b *testing.B) {
	benchAppend(b, oidNumeric, numericMod(12, 2), "1234.56", "-0.01", "9999999999.99", "42.00")
}

func BenchmarkAppendNumeric38(b *testing.B) {
	benchAppend(b, oidNumeric, numericMod(38, 10), "1234567890123456789012345678.0123456789")
}

func BenchmarkAppendTimestamptz(b *testing.B) {
	benchAppend(b, oidTimestampTZ, -1, "2024-01-02 03:04:05.123456+00", "2024-06-30 23:59:59+05:30",
		"1999-12-31 12:00:00.5-03:30")
}

func BenchmarkAppendText(b *testing.B) {
	benchAppend(b, oidText, -1, "hello", "a somewhat longer text value with spaces", "")
}

func BenchmarkAppendFloat8(b *testing.B) {
	benchAppend(b, oidFloat8, -1, "3.141592653589793", "-1.5e-300", "NaN")
}

func BenchmarkAppendDate(b *testing.B) {
	benchAppend(b, oidDate, -1, "2024-01-02", "1970-01-01")
}

func BenchmarkAppendUUID(b *testing.B) {
	benchAppend(b, oidUUID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
}

func BenchmarkAppendIntArray(b *testing.B) {
	benchAppend(b, 1007, -1, "{1,2,3,4,5,6,7,8}", "{}", "{{1,2},{3,NULL}}")
}

func BenchmarkAppendTextArray(b *testing.B) {
	benchAppend(b, 1009, -1, `{a,b,"c d","e\"f",NULL}`)
}

func BenchmarkAppendInterval(b *testing.B) {
	benchAppend(b, oidInterval, -1, "1 year 2 mons 3 days 04:05:06.5", "00:15:00")
}
