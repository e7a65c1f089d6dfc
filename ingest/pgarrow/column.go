package pgarrow

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Errors returned (wrapped) by Column.Append.
var (
	// ErrSyntax: the text is not a value of the column's type as
	// PostgreSQL prints it.
	ErrSyntax = errors.New("invalid text value")
	// ErrRange: the text is well formed but out of the type's range,
	// e.g. more digits than a numeric(p,s) allows.
	ErrRange = errors.New("value out of range")
	// ErrBuilder: the builder does not build the column's ArrowType.
	ErrBuilder = errors.New("builder does not match column type")
)

// MaxDecimalPrecision is the largest numeric precision mapped to
// decimal128; wider numerics map to string.
const MaxDecimalPrecision = 38

// Column decodes one column's text values. It is safe for concurrent
// use: snapshot workers decoding chunks of one table may share it.
type Column struct {
	typ   Type
	kind  kind
	dt    arrow.DataType
	scale int32        // decimal scale on the Arrow side
	prec  int32        // decimal precision on the Arrow side
	elem  *Column      // list element
	delim byte         // list delimiter
	unrep atomic.Int64 // values appended as NULL because Arrow cannot hold them
}

// scratch is a reusable buffer for values that must be rewritten before
// they are appended (bytea, non-canonical uuid, interval, escaped array
// elements). Pooled rather than kept per Column, so a Column holds no
// mutable state but its counter.
type scratch struct{ b []byte }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.b) <= 1<<20 { // let huge bytea buffers go
		s.b = s.b[:0]
		scratchPool.Put(s)
	}
}

var (
	timestampUS   = &arrow.TimestampType{Unit: arrow.Microsecond}
	timestampTZUS = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
)

// newScalar builds the decoder of a non-array type.
func newScalar(t Type, k kind) *Column {
	c := &Column{typ: t, kind: k}
	switch k {
	case kBool:
		c.dt = arrow.FixedWidthTypes.Boolean
	case kInt16, kInt32:
		c.dt = arrow.PrimitiveTypes.Int32
	case kInt64:
		c.dt = arrow.PrimitiveTypes.Int64
	case kFloat32:
		c.dt = arrow.PrimitiveTypes.Float32
	case kFloat64:
		c.dt = arrow.PrimitiveTypes.Float64
	case kDecimal:
		p, s, ok := decimalShape(t.BaseMod)
		if !ok {
			c.kind = kString
			c.dt = arrow.BinaryTypes.String
			break
		}
		c.prec, c.scale = p, s
		c.dt = &arrow.Decimal128Type{Precision: p, Scale: s}
	case kMoney:
		c.prec, c.scale = 19, 2
		c.dt = &arrow.Decimal128Type{Precision: 19, Scale: 2}
	case kBytea:
		c.dt = arrow.BinaryTypes.Binary
	case kDate:
		c.dt = arrow.FixedWidthTypes.Date32
	case kTimestamp:
		c.dt = timestampUS
	case kTimestampTZ:
		c.dt = timestampTZUS
	case kTime:
		c.dt = arrow.FixedWidthTypes.Time64us
	default: // kString, kUUID, kInterval
		c.dt = arrow.BinaryTypes.String
	}
	return c
}

// decimalShape maps a numeric typmod to an exact decimal128 (precision,
// scale): numeric(p,s) holds |v| < 10^(p-s) with s fraction digits, so a
// negative scale needs p-s integer digits at scale 0 and a scale above
// the precision needs s digits. Unconstrained or wider than 38 digits:
// not a decimal.
func decimalShape(typmod int32) (prec, scale int32, ok bool) {
	p, s, ok := numericTypmod(typmod)
	if !ok || p < 1 {
		return 0, 0, false
	}
	switch {
	case s < 0:
		p, s = p-s, 0
	case s > p:
		p = s
	}
	if p > MaxDecimalPrecision {
		return 0, 0, false
	}
	return p, s, true
}

// ElementFieldName is the name of list element fields, as Iceberg and
// Parquet's LIST convention name them.
const ElementFieldName = "element"

func newList(t Type, elem *Column, delim byte) *Column {
	et := elem.typ
	t.Elem = &et
	return &Column{
		typ:   t,
		kind:  kList,
		dt:    arrow.ListOfField(arrow.Field{Name: ElementFieldName, Type: elem.dt, Nullable: true}),
		elem:  elem,
		delim: delim,
	}
}

// ArrowType is the Arrow type Append builds.
func (c *Column) ArrowType() arrow.DataType { return c.dt }

// PGType is the PostgreSQL type's human name, for schema docs.
func (c *Column) PGType() string { return c.typ.Name }

// Type is the resolved PostgreSQL type.
func (c *Column) Type() Type { return c.typ }

// Field returns a nullable Arrow field of the column's type.
func (c *Column) Field(name string) arrow.Field {
	return arrow.Field{Name: name, Type: c.dt, Nullable: true}
}

// Unrepresentable counts the values this Column appended as NULL because
// the Arrow type cannot hold them: NaN (or ±Infinity) in a constrained
// numeric and timestamps beyond ±292,277 years from 1970. See
// docs/types.md.
func (c *Column) Unrepresentable() int64 {
	if c.elem != nil {
		return c.unrep.Load() + c.elem.Unrepresentable()
	}
	return c.unrep.Load()
}

// Append decodes one text value, as PostgreSQL's output function prints
// it, and appends it to b, which must build ArrowType(). text == nil
// means NULL and appends a null.
//
// On error a scalar column appends nothing; a list column may already
// hold some of the value's elements, so the batch should be discarded.
func (c *Column) Append(b array.Builder, text []byte) error {
	if text == nil {
		b.AppendNull()
		return nil
	}
	switch c.kind {
	case kString:
		sb, ok := b.(*array.StringBuilder)
		if !ok {
			return c.builderErr(b)
		}
		sb.BinaryBuilder.Append(text)
	case kInt32, kInt16:
		ib, ok := b.(*array.Int32Builder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := parseInt(text)
		if err != nil {
			return c.valueErr(text, err)
		}
		if v < math.MinInt32 || v > math.MaxInt32 || (c.kind == kInt16 && (v < math.MinInt16 || v > math.MaxInt16)) {
			return c.valueErr(text, ErrRange)
		}
		ib.Append(int32(v))
	case kInt64:
		ib, ok := b.(*array.Int64Builder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := parseInt(text)
		if err != nil {
			return c.valueErr(text, err)
		}
		ib.Append(v)
	case kDecimal, kMoney:
		return c.appendDecimal(b, text)
	case kTimestamp, kTimestampTZ:
		tb, ok := b.(*array.TimestampBuilder)
		if !ok {
			return c.builderErr(b)
		}
		v, st, err := parseTimestamp(text, c.kind == kTimestampTZ)
		if err != nil {
			return c.valueErr(text, err)
		}
		if st == outOfRange {
			c.unrep.Add(1)
			tb.AppendNull()
			return nil
		}
		tb.Append(arrow.Timestamp(v))
	case kList:
		lb, ok := b.(*array.ListBuilder)
		if !ok {
			return c.builderErr(b)
		}
		return c.appendArray(lb, text)
	default:
		return c.appendOther(b, text)
	}
	return nil
}

func (c *Column) appendDecimal(b array.Builder, text []byte) error {
	db, ok := b.(*array.Decimal128Builder)
	if !ok {
		return c.builderErr(b)
	}
	var (
		n   decimal128.Num
		err error
	)
	if c.kind == kMoney {
		n, err = parseMoney(text)
	} else {
		var special bool
		n, special, err = parseDecimal(text, c.prec, c.scale)
		if special {
			c.unrep.Add(1)
			db.AppendNull()
			return nil
		}
	}
	if err != nil {
		return c.valueErr(text, err)
	}
	db.Append(n)
	return nil
}

// appendOther handles the less frequent scalar kinds.
func (c *Column) appendOther(b array.Builder, text []byte) error {
	switch c.kind {
	case kBool:
		bb, ok := b.(*array.BooleanBuilder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := parseBool(text)
		if err != nil {
			return c.valueErr(text, err)
		}
		bb.Append(v)
	case kFloat32:
		fb, ok := b.(*array.Float32Builder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := strconv.ParseFloat(string(text), 32)
		if err != nil && !isRangeErr(err) {
			return c.valueErr(text, ErrSyntax)
		}
		fb.Append(float32(v))
	case kFloat64:
		fb, ok := b.(*array.Float64Builder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := strconv.ParseFloat(string(text), 64)
		if err != nil && !isRangeErr(err) {
			return c.valueErr(text, ErrSyntax)
		}
		fb.Append(v)
	case kBytea:
		bb, ok := b.(*array.BinaryBuilder)
		if !ok {
			return c.builderErr(b)
		}
		sc := getScratch()
		v, err := decodeBytea(sc.b[:0], text)
		sc.b = v
		if err == nil {
			bb.Append(v)
		}
		putScratch(sc)
		if err != nil {
			return c.valueErr(text, err)
		}
	case kUUID:
		sb, ok := b.(*array.StringBuilder)
		if !ok {
			return c.builderErr(b)
		}
		if isCanonicalUUID(text) {
			sb.BinaryBuilder.Append(text)
			break
		}
		sc := getScratch()
		v, err := formatUUID(sc.b[:0], text)
		sc.b = v
		if err == nil {
			sb.BinaryBuilder.Append(v)
		}
		putScratch(sc)
		if err != nil {
			return c.valueErr(text, err)
		}
	case kDate:
		db, ok := b.(*array.Date32Builder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := parseDate(text)
		if err != nil {
			return c.valueErr(text, err)
		}
		db.Append(arrow.Date32(v))
	case kTime:
		tb, ok := b.(*array.Time64Builder)
		if !ok {
			return c.builderErr(b)
		}
		v, err := parseTime(text)
		if err != nil {
			return c.valueErr(text, err)
		}
		tb.Append(arrow.Time64(v))
	case kInterval:
		sb, ok := b.(*array.StringBuilder)
		if !ok {
			return c.builderErr(b)
		}
		sc := getScratch()
		v, err := intervalISO(sc.b[:0], text)
		sc.b = v
		if err == nil {
			sb.BinaryBuilder.Append(v)
		}
		putScratch(sc)
		if err != nil {
			return c.valueErr(text, err)
		}
	default:
		return fmt.Errorf("decode %s: unhandled kind %d", c.typ.Name, c.kind)
	}
	return nil
}

// isRangeErr reports a float beyond the type's range: ParseFloat then
// returns ±Inf (or ±0), which is what PostgreSQL would hold too.
func isRangeErr(err error) bool {
	var ne *strconv.NumError
	return errors.As(err, &ne) && ne.Err == strconv.ErrRange
}

func (c *Column) builderErr(b array.Builder) error {
	return fmt.Errorf("decode %s: %w: want %s, got %s", c.typ.Name, ErrBuilder, c.dt, b.Type())
}

func (c *Column) valueErr(text []byte, err error) error {
	const max = 64
	s := string(text)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Errorf("decode %s %q: %w", c.typ.Name, s, err)
}
