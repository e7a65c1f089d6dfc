package pgarrow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// numericMod is the typmod of numeric(p,s).
func numericMod(p, s int32) int32 { return (p<<16 | s&0x7ff) + 4 }

func mustColumn(t testing.TB, oid uint32, mod int32) *Column {
	t.Helper()
	c, err := NewRegistry(nil).Column(context.Background(), oid, mod)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// decode appends texts ("\x00" stands for NULL) and returns the values
// as strings via valueString.
func decode(t testing.TB, c *Column, texts ...string) ([]string, error) {
	t.Helper()
	b := array.NewBuilder(memory.DefaultAllocator, c.ArrowType())
	defer b.Release()
	for _, s := range texts {
		var v []byte
		if s != "\x00" {
			v = []byte(s)
		}
		if err := c.Append(b, v); err != nil {
			return nil, err
		}
	}
	arr := b.NewArray()
	defer arr.Release()
	out := make([]string, arr.Len())
	for i := range out {
		out[i] = valueString(arr, i)
	}
	return out, nil
}

// valueString renders one Arrow value for comparisons: null is "NULL",
// decimals are unscaled integers, binary is hex, lists are [a b ...].
func valueString(arr arrow.Array, i int) string { return render(arr, i, false) }

// render is valueString, with floats as "NaN" or their IEEE 754 bits in
// hex (as PostgreSQL's float4send/float8send) when hexFloats is set.
func render(arr arrow.Array, i int, hexFloats bool) string {
	if arr.IsNull(i) {
		return "NULL"
	}
	switch a := arr.(type) {
	case *array.Decimal128:
		return a.Value(i).BigInt().String()
	case *array.Binary:
		return fmt.Sprintf("%x", a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Float64:
		v := a.Value(i)
		if hexFloats && !math.IsNaN(v) {
			return fmt.Sprintf("%016x", math.Float64bits(v))
		}
		return fmt.Sprint(v)
	case *array.Float32:
		v := a.Value(i)
		if hexFloats && !math.IsNaN(float64(v)) {
			return fmt.Sprintf("%08x", math.Float32bits(v))
		}
		return fmt.Sprint(v)
	case *array.Date32:
		return fmt.Sprint(int32(a.Value(i)))
	case *array.Timestamp:
		return fmt.Sprint(int64(a.Value(i)))
	case *array.Time64:
		return fmt.Sprint(int64(a.Value(i)))
	case *array.List:
		lo, hi := a.ValueOffsets(i)
		parts := make([]string, 0, hi-lo)
		for j := lo; j < hi; j++ {
			parts = append(parts, render(a.ListValues(), int(j), hexFloats))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return arr.ValueStr(i)
}

func TestColumnTypes(t *testing.T) {
	tests := []struct {
		oid   uint32
		mod   int32
		name  string
		arrow string
	}{
		{oidBool, -1, "boolean", "bool"},
		{oidInt2, -1, "smallint", "int32"},
		{oidInt4, -1, "integer", "int32"},
		{oidInt8, -1, "bigint", "int64"},
		{oidOID, -1, "oid", "int64"},
		{oidFloat4, -1, "real", "float32"},
		{oidFloat8, -1, "double precision", "float64"},
		{oidNumeric, -1, "numeric", "utf8"},
		{oidNumeric, numericMod(12, 2), "numeric(12,2)", "decimal(12, 2)"},
		{oidNumeric, numericMod(38, 38), "numeric(38,38)", "decimal(38, 38)"},
		{oidNumeric, numericMod(39, 2), "numeric(39,2)", "utf8"},
		{oidNumeric, numericMod(3, -2), "numeric(3,-2)", "decimal(5, 0)"},
		{oidNumeric, numericMod(3, 5), "numeric(3,5)", "decimal(5, 5)"},
		{oidNumeric, numericMod(37, -2), "numeric(37,-2)", "utf8"},
		{oidMoney, -1, "money", "decimal(19, 2)"},
		{oidText, -1, "text", "utf8"},
		{oidVarchar, 14, "character varying(10)", "utf8"},
		{oidBPChar, 9, "character(5)", "utf8"},
		{oidBPChar, -1, "bpchar", "utf8"},
		{oidName, -1, "name", "utf8"},
		{oidBytea, -1, "bytea", "binary"},
		{oidUUID, -1, "uuid", "utf8"},
		{oidJSON, -1, "json", "utf8"},
		{oidJSONB, -1, "jsonb", "utf8"},
		{oidDate, -1, "date", "date32"},
		{oidTimestamp, -1, "timestamp without time zone", "timestamp[us]"},
		{oidTimestamp, 3, "timestamp(3) without time zone", "timestamp[us]"},
		{oidTimestampTZ, -1, "timestamp with time zone", "timestamp[us, tz=UTC]"},
		{oidTime, -1, "time without time zone", "time64[us]"},
		{oidTimeTZ, 2, "time(2) with time zone", "utf8"},
		{oidInterval, -1, "interval", "utf8"},
		{oidInterval, 6<<16 | 0xffff, "interval year to month", "utf8"},
		{oidInterval, 0x7fff<<16 | 3, "interval(3)", "utf8"},
		{869, -1, "inet", "utf8"},
		{3904, -1, "int4range", "utf8"},
		{oidBit, 4, "bit(4)", "utf8"},
		{1007, -1, "integer[]", "list<element: int32, nullable>"},
		{1231, numericMod(10, 3), "numeric(10,3)[]", "list<element: decimal(10, 3), nullable>"},
		{1009, -1, "text[]", "list<element: utf8, nullable>"},
		{1185, -1, "timestamp with time zone[]", "list<element: timestamp[us, tz=UTC], nullable>"},
		{99999, -1, "unknown (oid 99999)", "utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustColumn(t, tt.oid, tt.mod)
			if c.PGType() != tt.name || c.ArrowType().String() != tt.arrow {
				t.Fatalf("Column(%d, %d) = %q %s; want %q %s", tt.oid, tt.mod, c.PGType(), c.ArrowType(), tt.name, tt.arrow)
			}
		})
	}
}

func TestAppendScalars(t *testing.T) {
	tests := []struct {
		name string
		oid  uint32
		mod  int32
		in   []string
		want string
	}{
		{"int2", oidInt2, -1, []string{"-32768", "32767", "\x00"}, "-32768 32767 NULL"},
		{"int4", oidInt4, -1, []string{"-2147483648", "2147483647"}, "-2147483648 2147483647"},
		{"int8", oidInt8, -1, []string{"-9223372036854775808"}, "-9223372036854775808"},
		{"oid", oidOID, -1, []string{"4294967295"}, "4294967295"},
		{"float8", oidFloat8, -1, []string{"NaN", "Infinity", "-Infinity", "1.5e-300", "-0", "1e+308"}, "NaN +Inf -Inf 1.5e-300 -0 1e+308"},
		{"float4", oidFloat4, -1, []string{"NaN", "-Infinity", "3.4028235e+38", "1e-45"}, "NaN -Inf 3.4028235e+38 1e-45"},
		{"numeric(12,2)", oidNumeric, numericMod(12, 2), []string{"-1234567890.12", "NaN", "0.5"}, "-123456789012 NULL 50"},
		{"numeric", oidNumeric, -1, []string{"NaN", "-Infinity", "1.000000000000000000000000000000000000000001"}, "NaN -Infinity 1.000000000000000000000000000000000000000001"},
		{"money", oidMoney, -1, []string{"-$92,233,720,368,547,758.08", "$0.01"}, "-9223372036854775808 1"},
		{"text", oidText, -1, []string{"", "a\tb", "\x00"}, " a\tb NULL"},
		{"bytea", oidBytea, -1, []string{`\x00ff`, `a\\b\001`, ""}, "00ff 615c6201 "},
		{"uuid", oidUUID, -1, []string{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"date", oidDate, -1, []string{"1970-01-02", "infinity", "-infinity"}, "1 2147483647 -2147483648"},
		{"timestamptz", oidTimestampTZ, -1, []string{"1970-01-01 05:30:00.000001+05:30", "294276-12-31 23:59:59.999999+00"}, "1 NULL"},
		{"time", oidTime, -1, []string{"00:00:00.000001", "24:00:00"}, "1 86400000000"},
		{"interval", oidInterval, -1, []string{"1 year 2 mons", "-00:00:01"}, "P1Y2M PT-1S"},
		{"bool", oidBool, -1, []string{"t", "f"}, "true false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, mustColumn(t, tt.oid, tt.mod), tt.in...)
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("got %q, want %q", s, tt.want)
			}
		})
	}
}

func TestAppendErrors(t *testing.T) {
	tests := []struct {
		name string
		oid  uint32
		mod  int32
		in   string
		err  error
	}{
		{"int2 range", oidInt2, -1, "40000", ErrRange},
		{"int4 range", oidInt4, -1, "2147483648", ErrRange},
		{"int4 syntax", oidInt4, -1, "12x", ErrSyntax},
		{"float syntax", oidFloat8, -1, "1.2.3", ErrSyntax},
		{"numeric range", oidNumeric, numericMod(4, 2), "100.00", ErrRange},
		{"money syntax", oidMoney, -1, "$", ErrSyntax},
		{"bool", oidBool, -1, "maybe", ErrSyntax},
		{"bytea", oidBytea, -1, `\xf`, ErrSyntax},
		{"uuid", oidUUID, -1, "nope", ErrSyntax},
		{"date", oidDate, -1, "2024-02-30", ErrSyntax},
		{"timestamp", oidTimestamp, -1, "yesterday", ErrSyntax},
		{"time", oidTime, -1, "noon", ErrSyntax},
		{"interval", oidInterval, -1, "soon", ErrSyntax},
		{"array element", 1007, -1, "{1,x}", ErrSyntax},
		{"array syntax", 1007, -1, "{1,2", ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode(t, mustColumn(t, tt.oid, tt.mod), tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestAppendWrongBuilder(t *testing.T) {
	for _, oid := range []uint32{oidBool, oidInt4, oidInt8, oidFloat4, oidFloat8, oidNumeric, oidMoney,
		oidText, oidBytea, oidUUID, oidDate, oidTimestamp, oidTimestampTZ, oidTime, oidInterval, 1007} {
		c := mustColumn(t, oid, numericMod(10, 2))
		b := array.NewBuilder(memory.DefaultAllocator, arrow.FixedWidthTypes.Date64)
		err := c.Append(b, []byte("1"))
		b.Release()
		if !errors.Is(err, ErrBuilder) {
			t.Errorf("%s: err = %v, want ErrBuilder", c.PGType(), err)
		}
	}
}

func TestUnrepresentable(t *testing.T) {
	c := mustColumn(t, 1231, numericMod(12, 2)) // numeric(12,2)[]
	got, err := decode(t, c, "{1.00,NaN,NULL}", "{NaN}")
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "[100 NULL NULL] [NULL]" {
		t.Fatalf("got %q", s)
	}
	if n := c.Unrepresentable(); n != 2 {
		t.Fatalf("Unrepresentable = %d, want 2", n)
	}
}

// TestColumnConcurrent shares Columns between goroutines, as snapshot
// workers do; run with -race.
func TestColumnConcurrent(t *testing.T) {
	cases := []struct {
		c    *Column
		in   string
		want string
	}{
		{mustColumn(t, 1009, -1), `{"a\\b","c\"d",e}`, `[a\b c"d e]`},
		{mustColumn(t, 1001, -1), `{"\\x00ff","\\x"}`, `[00ff ]`},
		{mustColumn(t, oidBytea, -1), `abc\\`, `6162635c`},
		{mustColumn(t, oidUUID, -1), `{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}`, `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`},
		{mustColumn(t, oidInterval, -1), `1 year -2 mons`, `P10M`},
		{mustColumn(t, oidNumeric, numericMod(5, 1)), `NaN`, `NULL`},
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				for _, tc := range cases {
					got, err := decode(t, tc.c, tc.in)
					if err != nil || got[0] != tc.want {
						t.Errorf("%s: %v, %v; want %q", tc.c.PGType(), got, err, tc.want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := cases[len(cases)-1].c.Unrepresentable(); n != 800 {
		t.Fatalf("Unrepresentable = %d, want 800", n)
	}
}
