package query

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Text formats value i of arr as PostgreSQL's text output would (UTC time
// zone, ISO dates): 't'/'f', 12.30, 2026-01-02 03:04:05.5+00, \x0102.
// Nested values (lists, structs, maps) are JSON. ok is false for NULL.
func Text(arr arrow.Array, i int) (s string, ok bool) {
	if arr.IsNull(i) {
		return "", false
	}
	switch a := arr.(type) {
	case *array.Boolean:
		if a.Value(i) {
			return "t", true
		}
		return "f", true
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10), true
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), true
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), true
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), true
	case *array.Uint8:
		return strconv.FormatUint(uint64(a.Value(i)), 10), true
	case *array.Uint16:
		return strconv.FormatUint(uint64(a.Value(i)), 10), true
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), true
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10), true
	case *array.Float32:
		return formatFloat(float64(a.Value(i)), 32), true
	case *array.Float64:
		return formatFloat(a.Value(i), 64), true
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale), true
	case *array.Decimal256:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale), true
	case *array.String:
		return a.Value(i), true
	case *array.LargeString:
		return a.Value(i), true
	case *array.StringView:
		return a.Value(i), true
	case *array.Binary:
		return `\x` + hex.EncodeToString(a.Value(i)), true
	case *array.LargeBinary:
		return `\x` + hex.EncodeToString(a.Value(i)), true
	case *array.FixedSizeBinary:
		return `\x` + hex.EncodeToString(a.Value(i)), true
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly), true
	case *array.Date64:
		return a.Value(i).ToTime().Format(time.DateOnly), true
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		t := a.Value(i).ToTime(typ.Unit).UTC()
		if typ.TimeZone == "" {
			return t.Format("2006-01-02 15:04:05.999999"), true
		}
		return t.Format("2006-01-02 15:04:05.999999") + "+00", true
	case *array.Time32:
		return a.Value(i).ToTime(a.DataType().(*arrow.Time32Type).Unit).Format("15:04:05.999999"), true
	case *array.Time64:
		return a.Value(i).ToTime(a.DataType().(*arrow.Time64Type).Unit).Format("15:04:05.999999"), true
	case *array.MonthDayNanoInterval:
		v := a.Value(i)
		return intervalText(v.Months, v.Days, v.Nanoseconds), true
	case *array.Dictionary:
		return Text(a.Dictionary(), a.GetValueIndex(i))
	case array.ListLike, *array.Struct, *array.Map:
		b, err := json.Marshal(arr.GetOneForMarshal(i))
		if err != nil {
			return arr.ValueStr(i), true
		}
		return string(b), true
	}
	return arr.ValueStr(i), true
}

// intervalText writes an interval as PostgreSQL does (IntervalStyle
// postgres): "1 year 2 mons 3 days 04:05:06.5".
func intervalText(months, days int32, nanos int64) string {
	var parts []string
	unit := func(n int64, name string) {
		if n == 0 {
			return
		}
		if n == 1 {
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
		} else {
			parts = append(parts, fmt.Sprintf("%d %ss", n, name))
		}
	}
	unit(int64(months/12), "year")
	unit(int64(months%12), "mon")
	unit(int64(days), "day")
	if nanos != 0 || len(parts) == 0 {
		sign := ""
		if nanos < 0 {
			sign, nanos = "-", -nanos
		}
		us := nanos / 1000
		t := fmt.Sprintf("%s%02d:%02d:%02d", sign, us/3_600_000_000, us/60_000_000%60, us/1_000_000%60)
		if frac := us % 1_000_000; frac != 0 {
			t += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}

// formatFloat writes a float as PostgreSQL 12+ does: the shortest exact
// digits, exponent form outside 1e-4 <= |v| < 1e15.
func formatFloat(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	if a := math.Abs(v); a != 0 && (a < 1e-4 || a >= 1e15) {
		return strconv.FormatFloat(v, 'e', -1, bits)
	}
	return strconv.FormatFloat(v, 'f', -1, bits)
}

// TypeName returns the PostgreSQL name of the type an Arrow column maps
// to on the wire and in JSON column lists; types without a close
// equivalent are "text".
func TypeName(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.BOOL:
		return "boolean"
	case arrow.INT8, arrow.INT16, arrow.UINT8:
		return "smallint"
	case arrow.INT32, arrow.UINT16:
		return "integer"
	case arrow.INT64, arrow.UINT32:
		return "bigint"
	case arrow.UINT64, arrow.DECIMAL128, arrow.DECIMAL256:
		return "numeric"
	case arrow.FLOAT16, arrow.FLOAT32:
		return "real"
	case arrow.FLOAT64:
		return "double precision"
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY:
		return "bytea"
	case arrow.DATE32, arrow.DATE64:
		return "date"
	case arrow.TIMESTAMP:
		if dt.(*arrow.TimestampType).TimeZone == "" {
			return "timestamp"
		}
		return "timestamptz"
	case arrow.TIME32, arrow.TIME64:
		return "time"
	case arrow.DICTIONARY:
		return TypeName(dt.(*arrow.DictionaryType).ValueType)
	}
	return "text"
}
