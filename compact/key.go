package compact

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
)

// Primary keys are compared as byte strings: each key column is encoded so
// that bytes.Compare of two encodings orders them like the values, and the
// encodings of a composite key are concatenated (each one is prefix-free).
// The same encoding is built from an Arrow value and from an Iceberg column
// bound, which is how a change is routed to the file whose key range holds
// it.
//
// Per column: 0x00 for NULL, else 0x01 and
//   - integers, dates, times, timestamps: 8 bytes big-endian, sign bit flipped;
//   - floats: the IEEE bits, all flipped when negative, else the sign bit;
//   - decimals: 16 bytes big-endian two's complement, sign bit flipped;
//   - booleans: one byte;
//   - strings and binaries: the bytes with 0x00 escaped as 0x00 0xFF,
//     then 0x00 0x01;
//   - fixed-size binaries (uuid): the bytes.

// keyEncoder appends the encoding of row i of a key column to dst.
type keyEncoder func(dst []byte, i int) []byte

// newKeyEncoder returns the encoder for an Arrow array, or an error for a
// type a key cannot have.
func newKeyEncoder(arr arrow.Array) (keyEncoder, error) {
	if ext, ok := arr.(array.ExtensionArray); ok {
		arr = ext.Storage()
	}
	withNull := func(f func(dst []byte, i int) []byte) keyEncoder {
		return func(dst []byte, i int) []byte {
			if arr.IsNull(i) {
				return append(dst, 0)
			}
			return f(append(dst, 1), i)
		}
	}
	switch a := arr.(type) {
	case *array.Int8:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Int16:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Int32:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Int64:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, a.Value(i)) }), nil
	case *array.Uint8:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Uint16:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Uint32:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Date32:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Date64:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Time32:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Time64:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Timestamp:
		return withNull(func(d []byte, i int) []byte { return appendInt(d, int64(a.Value(i))) }), nil
	case *array.Float32:
		return withNull(func(d []byte, i int) []byte { return appendFloat(d, float64(a.Value(i))) }), nil
	case *array.Float64:
		return withNull(func(d []byte, i int) []byte { return appendFloat(d, a.Value(i)) }), nil
	case *array.Boolean:
		return withNull(func(d []byte, i int) []byte {
			if a.Value(i) {
				return append(d, 1)
			}
			return append(d, 0)
		}), nil
	case *array.Decimal128:
		return withNull(func(d []byte, i int) []byte {
			v := a.Value(i)
			return appendDecimal(d, v.HighBits(), v.LowBits())
		}), nil
	case *array.String:
		return withNull(func(d []byte, i int) []byte { return appendBytes(d, []byte(a.Value(i))) }), nil
	case *array.LargeString:
		return withNull(func(d []byte, i int) []byte { return appendBytes(d, []byte(a.Value(i))) }), nil
	case *array.Binary:
		return withNull(func(d []byte, i int) []byte { return appendBytes(d, a.Value(i)) }), nil
	case *array.LargeBinary:
		return withNull(func(d []byte, i int) []byte { return appendBytes(d, a.Value(i)) }), nil
	case *array.FixedSizeBinary:
		return withNull(func(d []byte, i int) []byte { return append(d, a.Value(i)...) }), nil
	}
	return nil, fmt.Errorf("key column of type %s is not supported", arr.DataType())
}

func appendInt(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func appendFloat(dst []byte, f float64) []byte {
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b)
}

func appendDecimal(dst []byte, hi int64, lo uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(hi)^(1<<63))
	return binary.BigEndian.AppendUint64(dst, lo)
}

func appendBytes(dst, b []byte) []byte {
	for _, c := range b {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, 0, 1)
}

// encodeBound encodes an Iceberg single-value serialization (a column
// bound in a manifest) of type t like newKeyEncoder encodes the same
// value; ok is false for a type or value it cannot decode.
func encodeBound(t iceberg.Type, b []byte) (enc []byte, ok bool) {
	dst := []byte{1}
	switch t := t.(type) {
	case iceberg.Int32Type, iceberg.DateType:
		if len(b) != 4 {
			return nil, false
		}
		return appendInt(dst, int64(int32(binary.LittleEndian.Uint32(b)))), true
	case iceberg.Int64Type, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType,
		iceberg.TimestampNsType, iceberg.TimestampTzNsType:
		if len(b) == 4 { // a promoted int column keeps 4-byte bounds in old files
			return appendInt(dst, int64(int32(binary.LittleEndian.Uint32(b)))), true
		}
		if len(b) != 8 {
			return nil, false
		}
		return appendInt(dst, int64(binary.LittleEndian.Uint64(b))), true
	case iceberg.Float32Type:
		if len(b) != 4 {
			return nil, false
		}
		return appendFloat(dst, float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))), true
	case iceberg.Float64Type:
		if len(b) != 8 {
			return nil, false
		}
		return appendFloat(dst, math.Float64frombits(binary.LittleEndian.Uint64(b))), true
	case iceberg.BooleanType:
		if len(b) != 1 {
			return nil, false
		}
		return append(dst, b[0]&1), true
	case iceberg.DecimalType:
		if len(b) == 0 || len(b) > 16 {
			return nil, false
		}
		n := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 { // negative two's complement
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		var buf [16]byte
		u := new(big.Int).Set(n)
		if n.Sign() < 0 {
			u.Add(u, new(big.Int).Lsh(big.NewInt(1), 128))
		}
		u.FillBytes(buf[:])
		return appendDecimal(dst, int64(binary.BigEndian.Uint64(buf[:8])), binary.BigEndian.Uint64(buf[8:])), true
	case iceberg.StringType, iceberg.BinaryType:
		return appendBytes(dst, b), true
	case iceberg.UUIDType, iceberg.FixedType:
		return append(dst, b...), true
	default:
		_ = t
	}
	return nil, false
}
