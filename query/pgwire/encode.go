package pgwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/query"
)

// PostgreSQL type OIDs of the types results are described with.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
)

var oids = map[string]uint32{
	"boolean": oidBool, "bytea": oidBytea, "bigint": oidInt8, "smallint": oidInt2, "integer": oidInt4,
	"text": oidText, "real": oidFloat4, "double precision": oidFloat8, "date": oidDate, "time": oidTime,
	"timestamp": oidTimestamp, "timestamptz": oidTimestamptz, "numeric": oidNumeric,
}

// typeSize is the pg_type.typlen of each OID (-1: variable).
var typeSize = map[uint32]int16{oidBool: 1, oidInt2: 2, oidInt4: 4, oidInt8: 8, oidFloat4: 4, oidFloat8: 8,
	oidDate: 4, oidTime: 8, oidTimestamp: 8, oidTimestamptz: 8}

// oidOf returns the OID of a PostgreSQL type name from query.TypeName.
func oidOf(name string) uint32 {
	if o, ok := oids[name]; ok {
		return o
	}
	return oidText
}

// pgEpoch is PostgreSQL's epoch for binary dates and timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// encodeBinary encodes value i of arr in the binary format of oid.
func encodeBinary(oid uint32, arr arrow.Array, i int) ([]byte, error) {
	switch oid {
	case oidBool:
		if a, ok := arr.(*array.Boolean); ok {
			if a.Value(i) {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		}
	case oidInt2, oidInt4, oidInt8:
		v, ok := intValue(arr, i)
		if !ok {
			break
		}
		switch oid {
		case oidInt2:
			return binary.BigEndian.AppendUint16(nil, uint16(int16(v))), nil
		case oidInt4:
			return binary.BigEndian.AppendUint32(nil, uint32(int32(v))), nil
		}
		return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
	case oidFloat4:
		if a, ok := arr.(*array.Float32); ok {
			return binary.BigEndian.AppendUint32(nil, math.Float32bits(a.Value(i))), nil
		}
	case oidFloat8:
		if a, ok := arr.(*array.Float64); ok {
			return binary.BigEndian.AppendUint64(nil, math.Float64bits(a.Value(i))), nil
		}
	case oidNumeric:
		s, _ := query.Text(arr, i)
		return numericBinary(s)
	case oidBytea:
		switch a := arr.(type) {
		case *array.Binary:
			return a.Value(i), nil
		case *array.LargeBinary:
			return a.Value(i), nil
		case *array.FixedSizeBinary:
			return a.Value(i), nil
		}
	case oidText:
		s, _ := query.Text(arr, i)
		return []byte(s), nil
	case oidDate:
		if a, ok := arr.(*array.Date32); ok {
			return binary.BigEndian.AppendUint32(nil, uint32(int32(a.Value(i))-10957)), nil
		}
	case oidTime:
		var t time.Time
		switch a := arr.(type) {
		case *array.Time64:
			t = a.Value(i).ToTime(a.DataType().(*arrow.Time64Type).Unit)
		case *array.Time32:
			t = a.Value(i).ToTime(a.DataType().(*arrow.Time32Type).Unit)
		default:
			return nil, fmt.Errorf("cannot send %s as binary time", arr.DataType())
		}
		us := t.Sub(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())).Microseconds()
		return binary.BigEndian.AppendUint64(nil, uint64(us)), nil
	case oidTimestamp, oidTimestamptz:
		if a, ok := arr.(*array.Timestamp); ok {
			t := a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit)
			return binary.BigEndian.AppendUint64(nil, uint64(t.Sub(pgEpoch).Microseconds())), nil
		}
	}
	return nil, fmt.Errorf("cannot send %s in the binary format of type %d", arr.DataType(), oid)
}

func intValue(arr arrow.Array, i int) (int64, bool) {
	switch a := arr.(type) {
	case *array.Int8:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int64:
		return a.Value(i), true
	case *array.Uint8:
		return int64(a.Value(i)), true
	case *array.Uint16:
		return int64(a.Value(i)), true
	case *array.Uint32:
		return int64(a.Value(i)), true
	}
	return 0, false
}

// numericBinary encodes a decimal string ("-123.4500") in PostgreSQL's
// binary numeric format: base-10000 digits with weight, sign and scale.
func numericBinary(s string) ([]byte, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || strings.Trim(intPart+frac, "0123456789") != "" {
		return nil, fmt.Errorf("cannot send %q as binary numeric", s)
	}
	dscale := len(frac)
	if pad := (4 - len(intPart)%4) % 4; pad > 0 {
		intPart = strings.Repeat("0", pad) + intPart
	}
	if pad := (4 - len(frac)%4) % 4; pad > 0 {
		frac += strings.Repeat("0", pad)
	}
	all := intPart + frac
	digits := make([]int16, 0, len(all)/4)
	for j := 0; j < len(all); j += 4 {
		d, _ := strconv.Atoi(all[j : j+4])
		digits = append(digits, int16(d))
	}
	weight := len(intPart)/4 - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	sign := uint16(0)
	if neg && len(digits) > 0 {
		sign = 0x4000
	}
	if len(digits) == 0 {
		weight = 0
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(dscale))
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, uint16(d))
	}
	return b, nil
}

// decodeParam turns a Bind parameter into a value DuckDB binds: text
// parameters are passed as strings (DuckDB casts them), binary ones are
// decoded by the type they were described with.
func decodeParam(v []byte, format int16, oid uint32) (any, error) {
	if v == nil {
		return nil, nil
	}
	if format == 0 {
		return string(v), nil
	}
	switch oid {
	case oidBool:
		if len(v) == 1 {
			return v[0] != 0, nil
		}
	case oidInt2:
		if len(v) == 2 {
			return int64(int16(binary.BigEndian.Uint16(v))), nil
		}
	case oidInt4:
		if len(v) == 4 {
			return int64(int32(binary.BigEndian.Uint32(v))), nil
		}
	case oidInt8:
		if len(v) == 8 {
			return int64(binary.BigEndian.Uint64(v)), nil
		}
	case oidFloat4:
		if len(v) == 4 {
			return float64(math.Float32frombits(binary.BigEndian.Uint32(v))), nil
		}
	case oidFloat8:
		if len(v) == 8 {
			return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
		}
	case oidText, 0:
		return string(v), nil
	case oidBytea:
		return v, nil
	case oidDate:
		if len(v) == 4 {
			return pgEpoch.AddDate(0, 0, int(int32(binary.BigEndian.Uint32(v)))), nil
		}
	case oidTimestamp, oidTimestamptz:
		if len(v) == 8 {
			return pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(v))) * time.Microsecond), nil
		}
	}
	return nil, fmt.Errorf("binary parameter of type %d is not supported (send it as text)", oid)
}
