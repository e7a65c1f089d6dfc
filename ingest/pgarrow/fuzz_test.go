package pgarrow

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzArrayParse feeds arbitrary text to array columns of several
// element types: errors are fine, panics and inconsistent builders are
// not. Seeds: testdata/fuzz/FuzzArrayParse.
func FuzzArrayParse(f *testing.F) {
	f.Add([]byte(`{1,2,NULL}`))
	cols := []*Column{
		mustColumn(f, 1007, -1),                // integer[]
		mustColumn(f, 1009, -1),                // text[]
		mustColumn(f, 1231, numericMod(10, 3)), // numeric(10,3)[]
		mustColumn(f, 1020, -1),                // box[] (';' delimiter)
		mustColumn(f, 1185, -1),                // timestamptz[]
		mustColumn(f, 1001, -1),                // bytea[]
		mustColumn(f, 1187, -1),                // interval[]
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, c := range cols {
			lb := array.NewBuilder(memory.DefaultAllocator, c.ArrowType()).(*array.ListBuilder)
			err := c.Append(lb, text)
			if err == nil && lb.Len() != 1 {
				t.Fatalf("%s: %d lists after one Append", c.PGType(), lb.Len())
			}
			arr := lb.NewArray() // must be a well-formed array either way
			if err := arr.(*array.List).ValidateFull(); err != nil {
				t.Fatalf("%s: invalid array: %v", c.PGType(), err)
			}
			arr.Release()
			lb.Release()
		}
	})
}

// FuzzTimestamptz checks parseTimestamp never panics and that what it
// accepts survives a round trip through its UTC text.
func FuzzTimestamptz(f *testing.F) {
	f.Add([]byte("2024-01-02 03:04:05.123456+05:30"))
	f.Fuzz(func(t *testing.T, text []byte) {
		v, st, err := parseTimestamp(text, true)
		if err != nil || st != finite || v == math.MaxInt64 || v == math.MinInt64 {
			return
		}
		s := utcText(v)
		w, st2, err := parseTimestamp([]byte(s), true)
		if err != nil || st2 != finite || w != v {
			t.Fatalf("%q -> %d -> %q -> %d, %v", text, v, s, w, err)
		}
	})
}

// utcText prints microseconds since 1970 as PostgreSQL would in UTC.
func utcText(us int64) string {
	tm := time.Unix(us/1e6, (us%1e6)*1000)
	if us%1e6 < 0 {
		tm = time.Unix(us/1e6-1, (us%1e6+1e6)*1000)
	}
	tm = tm.UTC()
	y, era := tm.Year(), ""
	if y <= 0 {
		y, era = 1-y, " BC"
	}
	return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d+00%s", y, tm.Month(), tm.Day(),
		tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond()/1000, era)
}

// FuzzInterval checks the interval parser never panics and that its ISO
// output parses back to the same interval.
func FuzzInterval(f *testing.F) {
	f.Add([]byte("1 year 2 mons 3 days 04:05:06.5"))
	f.Fuzz(func(t *testing.T, text []byte) {
		iv, err := parseInterval(text)
		if err != nil {
			return
		}
		iso := iv.appendISO(nil)
		back, err := parseInterval(iso)
		if err != nil || back != iv {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", text, iv, iso, back, err)
		}
	})
}
