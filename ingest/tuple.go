package ingest

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// rowParser parses pgoutput inserts, updates and deletes without
// allocating: pglogrepl allocates a struct and a copy of the bytes for
// every column of every row, a quarter of ingest's CPU in the stream
// benchmark. The messages and tuples it returns point into the message
// bytes and into buffers the next call reuses, so they are valid until
// then (the decoder copies values into Arrow builders at once). Other
// messages are parsed by pglogrepl.
type rowParser struct {
	ins    pglogrepl.InsertMessage
	upd    pglogrepl.UpdateMessage
	del    pglogrepl.DeleteMessage
	tuples [2]tupleBuf
}

type tupleBuf struct {
	td   pglogrepl.TupleData
	cols []pglogrepl.TupleDataColumn
}

// parse parses one pgoutput message; hasXid says a streamed transaction's
// message carries its xid after the type byte (protocol 2). Row messages
// come back in their protocol 1 form.
func (p *rowParser) parse(data []byte, hasXid bool) (pglogrepl.Message, error) {
	if len(data) == 0 || (data[0] != 'I' && data[0] != 'U' && data[0] != 'D') {
		return parseMessage(data, hasXid)
	}
	kind := data[0]
	short := func() error {
		return fmt.Errorf("malformed pgoutput message %q: a tuple runs past its %d bytes", kind, len(data))
	}
	i := 5
	if hasXid {
		i += 4
	}
	if i+1 > len(data) {
		return nil, short()
	}
	rel := binary.BigEndian.Uint32(data[i-4:])
	var old *pglogrepl.TupleData
	oldType := uint8(0)
	if t := data[i]; t == 'K' || t == 'O' {
		if kind == 'I' {
			return nil, fmt.Errorf("malformed pgoutput message %q: tuple type %q", kind, t)
		}
		var n int
		var err error
		if old, n, err = p.tuples[0].decode(data[i+1:]); err != nil {
			return nil, short()
		}
		oldType, i = t, i+1+n
	}
	if kind == 'D' {
		if old == nil || i != len(data) {
			return nil, fmt.Errorf("malformed pgoutput message %q: want one K or O tuple", kind)
		}
		p.del = pglogrepl.DeleteMessage{RelationID: rel, OldTupleType: oldType, OldTuple: old}
		return &p.del, nil
	}
	if i >= len(data) || data[i] != 'N' {
		return nil, fmt.Errorf("malformed pgoutput message %q: want an N tuple", kind)
	}
	nu, n, err := p.tuples[1].decode(data[i+1:])
	if err != nil || i+1+n != len(data) {
		return nil, short()
	}
	if kind == 'I' {
		p.ins = pglogrepl.InsertMessage{RelationID: rel, Tuple: nu}
		return &p.ins, nil
	}
	p.upd = pglogrepl.UpdateMessage{RelationID: rel, OldTupleType: oldType, OldTuple: old, NewTuple: nu}
	return &p.upd, nil
}

// decode reads one TupleData from src and returns it with its length.
func (b *tupleBuf) decode(src []byte) (*pglogrepl.TupleData, int, error) {
	if len(src) < 2 {
		return nil, 0, errShortTuple
	}
	n := int(binary.BigEndian.Uint16(src))
	if cap(b.cols) < n {
		b.cols = make([]pglogrepl.TupleDataColumn, n)
		b.td.Columns = make([]*pglogrepl.TupleDataColumn, n)
	}
	b.cols, b.td.Columns = b.cols[:n], b.td.Columns[:n]
	i := 2
	for k := range b.cols {
		if i >= len(src) {
			return nil, 0, errShortTuple
		}
		c := &b.cols[k]
		*c = pglogrepl.TupleDataColumn{DataType: src[i]}
		i++
		switch c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if i+4 > len(src) {
				return nil, 0, errShortTuple
			}
			l := int(binary.BigEndian.Uint32(src[i:]))
			i += 4
			if l < 0 || l > len(src)-i {
				return nil, 0, errShortTuple
			}
			c.Length, c.Data = uint32(l), src[i:i+l:i+l]
			i += l
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
		default:
			return nil, 0, fmt.Errorf("unknown tuple column kind %q", c.DataType)
		}
		b.td.Columns[k] = c
	}
	b.td.ColumnNum = uint16(n)
	return &b.td, i, nil
}

var errShortTuple = fmt.Errorf("tuple runs past the message")
