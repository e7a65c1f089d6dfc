package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/ingest/pgarrow"
)

// Change operations, the values of the _cdc_op column.
const (
	OpRead     = "r"
	OpInsert   = "c"
	OpUpdate   = "u"
	OpDelete   = "d"
	OpTruncate = "t"
)

// Metadata columns every changelog row carries after the source columns.
const (
	ColOp        = "_cdc_op"
	ColLSN       = "_cdc_lsn"
	ColSeq       = "_cdc_seq"
	ColXID       = "_cdc_xid"
	ColCommitTS  = "_cdc_commit_ts"
	ColUnchanged = "_cdc_unchanged"
)

var cdcFields = []arrow.Field{
	{Name: ColOp, Type: arrow.BinaryTypes.String, Nullable: false},
	{Name: ColLSN, Type: arrow.PrimitiveTypes.Int64, Nullable: false},
	{Name: ColSeq, Type: arrow.PrimitiveTypes.Int64, Nullable: false},
	{Name: ColXID, Type: arrow.PrimitiveTypes.Int64, Nullable: false},
	{Name: ColCommitTS, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: false},
	{Name: ColUnchanged, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
}

// relation is the decoder's view of one source table as of its latest
// Relation message.
type relation struct {
	id        uint32
	schema    string
	name      string
	cols      []relColumn
	arrow     *arrow.Schema
	committed uint64 // the lake table's committed LSN when first seen
	buf       *tableBuffer
}

type relColumn struct {
	name string
	key  bool // part of the replica identity
	dec  *pgarrow.Column
}

// tableBuffer accumulates one table's rows until the next cut.
type tableBuffer struct {
	rel  *relation
	b    *array.RecordBuilder
	done []arrow.RecordBatch // finished parts (a schema change finishes one)
	part int                 // rows in the builder
	rows int                 // rows in done and the builder
	kept int                 // rows of part that belong to complete transactions
	txn  int64               // the transaction that last wrote here
}

// tx is the transaction being received.
type tx struct {
	xid        int64
	commitLSN  uint64
	commitTime time.Time
	seq        int64
	n          int64          // transactions begun in this session
	touched    []*tableBuffer // tables written by this transaction
}

// decoder turns pgoutput messages into buffered rows. It is not safe for
// concurrent use; stream.go guards it with a mutex.
type decoder struct {
	reg     *pgarrow.Registry
	lookup  func(ctx context.Context, schema, name string) (committed uint64, err error)
	rels    map[uint32]*relation
	tables  map[string]*tableBuffer // by schema.name
	inTx    bool
	tx      tx
	rows    int   // rows buffered since the last cut
	bytes   int64 // approximate bytes buffered since the last cut
	skipped int64 // replayed rows dropped because the lake holds them

	// last complete transaction
	endLSN     uint64
	commitTime time.Time
}

func newDecoder(reg *pgarrow.Registry, lookup func(context.Context, string, string) (uint64, error)) *decoder {
	return &decoder{reg: reg, lookup: lookup, rels: map[uint32]*relation{}, tables: map[string]*tableBuffer{}}
}

// handle applies one logical replication message.
func (d *decoder) handle(ctx context.Context, msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return d.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		d.inTx = true
		d.tx = tx{xid: int64(m.Xid), commitLSN: uint64(m.FinalLSN), commitTime: m.CommitTime.UTC(),
			n: d.tx.n + 1, touched: d.tx.touched[:0]}
	case *pglogrepl.CommitMessage:
		d.inTx = false
		for _, tb := range d.tx.touched {
			tb.kept = tb.part
		}
		d.endLSN = uint64(m.TransactionEndLSN)
		d.commitTime = m.CommitTime.UTC()
	case *pglogrepl.InsertMessage:
		return d.row(m.RelationID, OpInsert, m.Tuple, false)
	case *pglogrepl.UpdateMessage:
		rel, ok := d.rels[m.RelationID]
		if !ok {
			return fmt.Errorf("update for unknown relation %d", m.RelationID)
		}
		if m.OldTuple != nil && keyChanged(rel, m.OldTuple, m.NewTuple) {
			// the row left its old key: a delete of the old key first
			if err := d.row(m.RelationID, OpDelete, m.OldTuple, m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey); err != nil {
				return err
			}
		}
		return d.row(m.RelationID, OpUpdate, m.NewTuple, false)
	case *pglogrepl.DeleteMessage:
		return d.row(m.RelationID, OpDelete, m.OldTuple, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := d.row(id, OpTruncate, nil, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyChanged reports whether an update's old tuple has other key values
// than its new tuple.
func keyChanged(rel *relation, old, nu *pglogrepl.TupleData) bool {
	for i, c := range rel.cols {
		if !c.key || i >= len(old.Columns) || i >= len(nu.Columns) {
			continue
		}
		o, n := old.Columns[i], nu.Columns[i]
		if n.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		if o.DataType != n.DataType || string(o.Data) != string(n.Data) {
			return true
		}
	}
	return false
}

func (d *decoder) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	rel := &relation{id: m.RelationID, schema: m.Namespace, name: m.RelationName}
	fields := make([]arrow.Field, 0, len(m.Columns)+len(cdcFields))
	for _, c := range m.Columns {
		dec, err := d.reg.Column(ctx, c.DataType, c.TypeModifier)
		if err != nil {
			return fmt.Errorf("column %s of %s.%s: %w", c.Name, m.Namespace, m.RelationName, err)
		}
		rel.cols = append(rel.cols, relColumn{name: c.Name, key: c.Flags&1 != 0, dec: dec})
		fields = append(fields, arrow.Field{Name: c.Name, Type: dec.ArrowType(), Nullable: true})
	}
	rel.arrow = arrow.NewSchema(append(fields, cdcFields...), nil)
	key := rel.schema + "." + rel.name
	if old, ok := d.rels[m.RelationID]; ok {
		rel.committed = old.committed
	} else if tb, ok := d.tables[key]; ok {
		rel.committed = tb.rel.committed
	} else {
		committed, err := d.lookup(ctx, rel.schema, rel.name)
		if err != nil {
			return err
		}
		rel.committed = committed
	}
	if tb, ok := d.tables[key]; ok {
		if !tb.rel.arrow.Equal(rel.arrow) {
			tb.finish()
			tb.b.Release()
			tb.b = array.NewRecordBuilder(memory.DefaultAllocator, rel.arrow)
		}
		tb.rel = rel
		rel.buf = tb
	}
	d.rels[m.RelationID] = rel
	return nil
}

// row appends one change row. keyOnly marks an identity-only ('K') tuple
// whose non-key columns were not sent.
func (d *decoder) row(relID uint32, op string, t *pglogrepl.TupleData, keyOnly bool) error {
	rel, ok := d.rels[relID]
	if !ok {
		return fmt.Errorf("change for unknown relation %d", relID)
	}
	if d.tx.commitLSN < rel.committed {
		d.skipped++
		d.tx.seq++ // keep the positions of the other tables' rows stable
		return nil // replayed: the lake already holds this transaction
	}
	if rel.buf == nil {
		key := rel.schema + "." + rel.name
		rel.buf = d.tables[key]
		if rel.buf == nil {
			rel.buf = &tableBuffer{rel: rel, b: array.NewRecordBuilder(memory.DefaultAllocator, rel.arrow)}
			d.tables[key] = rel.buf
		}
	}
	tb := rel.buf
	if tb.txn != d.tx.n {
		tb.txn = d.tx.n
		d.tx.touched = append(d.tx.touched, tb)
	}
	var unchanged []string
	n := len(rel.cols)
	for i, c := range rel.cols {
		fb := tb.b.Field(i)
		if t == nil || i >= len(t.Columns) {
			fb.AppendNull()
			continue
		}
		col := t.Columns[i]
		switch {
		case keyOnly && !c.key, col.DataType == pglogrepl.TupleDataTypeToast:
			fb.AppendNull()
			unchanged = append(unchanged, c.name)
		case col.DataType == pglogrepl.TupleDataTypeNull:
			fb.AppendNull()
		default:
			if err := c.dec.Append(fb, col.Data); err != nil {
				return fmt.Errorf("decode %s.%s.%s: %w", rel.schema, rel.name, c.name, err)
			}
			d.bytes += int64(len(col.Data))
		}
	}
	tb.b.Field(n).(*array.StringBuilder).Append(op)
	tb.b.Field(n + 1).(*array.Int64Builder).Append(int64(d.tx.commitLSN))
	tb.b.Field(n + 2).(*array.Int64Builder).Append(d.tx.seq)
	tb.b.Field(n + 3).(*array.Int64Builder).Append(d.tx.xid)
	tb.b.Field(n + 4).(*array.TimestampBuilder).Append(arrow.Timestamp(d.tx.commitTime.UnixMicro()))
	lb := tb.b.Field(n + 5).(*array.ListBuilder)
	if len(unchanged) == 0 {
		lb.AppendNull()
	} else {
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		for _, u := range unchanged {
			vb.Append(u)
		}
	}
	d.tx.seq++
	tb.part++
	tb.rows++
	d.rows++
	d.bytes += 48
	return nil
}

// finish closes the builder's current part.
func (tb *tableBuffer) finish() {
	if tb.part > 0 {
		tb.done = append(tb.done, tb.b.NewRecordBatch())
		tb.part, tb.kept = 0, 0
	}
}

// abort drops the rows of the transaction being received.
func (d *decoder) abort() {
	if !d.inTx {
		return
	}
	for _, tb := range d.tx.touched {
		if tb.part == tb.kept {
			continue
		}
		rec := tb.b.NewRecordBatch()
		dropped := tb.part - tb.kept
		if tb.kept > 0 {
			tb.done = append(tb.done, rec.NewSlice(0, int64(tb.kept)))
		}
		rec.Release()
		tb.rows -= dropped
		d.rows -= dropped
		tb.part, tb.kept = 0, 0
	}
	d.inTx = false
}

// cut hands over every buffered row as a batch ending at the last complete
// transaction. It must only be called between transactions.
func (d *decoder) cut() *batch {
	b := &batch{endLSN: d.endLSN, commitTime: d.commitTime, rows: d.rows, bytes: d.bytes}
	for _, tb := range d.tables {
		if tb.rows == 0 {
			continue
		}
		tb.finish()
		b.tables = append(b.tables, tableBatch{schema: tb.rel.schema, name: tb.rel.name, keys: keyNames(tb.rel), parts: tb.done})
		tb.done, tb.rows = nil, 0
	}
	d.rows, d.bytes = 0, 0
	return b
}

func keyNames(rel *relation) []string {
	var ks []string
	for _, c := range rel.cols {
		if c.key {
			ks = append(ks, c.name)
		}
	}
	return ks
}

// batch is a set of complete transactions to commit together.
type batch struct {
	tables     []tableBatch
	endLSN     uint64 // the watermark once committed
	commitTime time.Time
	rows       int
	bytes      int64
}

// tableBatch holds one table's rows in a batch, in one or more parts
// (a part per schema seen).
type tableBatch struct {
	schema, name string
	keys         []string
	parts        []arrow.RecordBatch
}

func (tb tableBatch) release() {
	for _, p := range tb.parts {
		p.Release()
	}
}
