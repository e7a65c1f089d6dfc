package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/ingest/pgarrow"
	"github.com/cdclake/cdclake/lakeformat"
)

// relation is the decoder's view of one source table as of its latest
// Relation message.
type relation struct {
	id        uint32
	schema    string
	name      string
	cols      []relColumn
	keys      []string // primary key (or replica identity) columns
	missing   bool     // no changelog in the lake when first seen: onNew on its first row
	arrow     *arrow.Schema
	committed uint64 // the lake table's committed LSN when first seen
	buf       *tableBuffer
}

type relColumn struct {
	name string
	oid  uint32
	mod  int32 // type modifier
	key  bool  // part of the replica identity
	dec  *pgarrow.Column
}

// tableBuffer accumulates one table's rows until the next cut.
type tableBuffer struct {
	rel    *relation
	b      *array.RecordBuilder
	done   []arrow.RecordBatch // finished parts (a schema change finishes one)
	part   int                 // rows in the builder
	rows   int                 // rows in done and the builder
	txn    int64               // the transaction that last wrote here
	txRows int                 // rows of that transaction still here
}

// tx is the transaction being received.
type tx struct {
	xid        int64
	commitLSN  uint64
	commitTime time.Time
	seq        int64
	n          int64          // transactions begun in this session
	touched    []*tableBuffer // tables written by this transaction
	split      bool           // part of it was cut as a partial batch
}

// decoder turns pgoutput messages into buffered rows. It is not safe for
// concurrent use; stream.go guards it with a mutex.
type decoder struct {
	reg        *pgarrow.Registry
	primaryKey func(ctx context.Context, relid uint32) ([]string, error)
	// attributes looks up the catalog's column attributes (defaults).
	attributes func(ctx context.Context, relid uint32) (map[string]attribute, error)
	lookup     func(ctx context.Context, schema, name string) (committed uint64, exists bool, err error)
	// onNew is called for a table that has no changelog in the lake yet.
	onNew func(schema, name string)
	// lakeTypes returns the PostgreSQL types of a table's columns as the
	// lake last recorded them (cdclake.pg-types).
	lakeTypes func(ctx context.Context, schema, name string) ([]typedColumn, error)
	// timeout bounds the look-ups of one Relation message (FlushTimeout).
	timeout time.Duration
	// onRewrite is called when a Relation message shows that a table's
	// rows were rewritten with values no change carries (see rewritten);
	// ctx bounds what it does before it returns.
	onRewrite func(ctx context.Context, schema, name, why string) error
	rels      map[uint32]*relation
	tables    map[string]*tableBuffer // by schema.name
	inTx      bool
	tx        tx
	rows      int   // rows buffered since the last cut
	bytes     int64 // approximate bytes buffered since the last cut
	txStart   int64 // bytes when the open transaction began, 0 after a cut
	skipped   int64 // replayed rows dropped because the lake holds them

	// last complete transaction
	endLSN     uint64
	commitTime time.Time
}

func newDecoder(reg *pgarrow.Registry, lookup func(context.Context, string, string) (uint64, bool, error)) *decoder {
	return &decoder{reg: reg, lookup: lookup, rels: map[uint32]*relation{}, tables: map[string]*tableBuffer{}}
}

// unwrap returns the protocol 1 message inside a protocol 2 one.
func unwrap(msg pglogrepl.Message) pglogrepl.Message {
	switch m := msg.(type) {
	case *pglogrepl.RelationMessageV2:
		return &m.RelationMessage
	case *pglogrepl.InsertMessageV2:
		return &m.InsertMessage
	case *pglogrepl.UpdateMessageV2:
		return &m.UpdateMessage
	case *pglogrepl.DeleteMessageV2:
		return &m.DeleteMessage
	case *pglogrepl.TruncateMessageV2:
		return &m.TruncateMessage
	case *pglogrepl.TypeMessageV2:
		return &m.TypeMessage
	case *pglogrepl.LogicalDecodingMessageV2:
		return &m.LogicalDecodingMessage
	}
	return msg
}

func (d *decoder) begin(xid uint32, commitLSN uint64, commitTime time.Time) {
	d.inTx = true
	d.txStart = d.bytes
	d.tx = tx{xid: int64(xid), commitLSN: commitLSN, commitTime: commitTime.UTC(), n: d.tx.n + 1, touched: d.tx.touched[:0]}
}

func (d *decoder) commit(endLSN uint64, commitTime time.Time) {
	d.inTx = false
	d.endLSN = endLSN
	d.commitTime = commitTime.UTC()
}

// handle applies one logical replication message (protocol 1 form).
func (d *decoder) handle(ctx context.Context, msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return d.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		d.begin(m.Xid, uint64(m.FinalLSN), m.CommitTime)
	case *pglogrepl.CommitMessage:
		d.commit(uint64(m.TransactionEndLSN), m.CommitTime)
	case *pglogrepl.InsertMessage:
		return d.row(m.RelationID, lakeformat.OpInsert, m.Tuple, false)
	case *pglogrepl.UpdateMessage:
		rel, ok := d.rels[m.RelationID]
		if !ok {
			return fmt.Errorf("update for unknown relation %d", m.RelationID)
		}
		keyOnly := m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey
		if m.OldTuple != nil && keyChanged(rel, m.OldTuple, m.NewTuple, keyOnly) {
			// the row left its old key: a delete of the old key first
			if err := d.row(m.RelationID, lakeformat.OpDelete, m.OldTuple, keyOnly); err != nil {
				return err
			}
		}
		return d.row(m.RelationID, lakeformat.OpUpdate, m.NewTuple, false)
	case *pglogrepl.DeleteMessage:
		return d.row(m.RelationID, lakeformat.OpDelete, m.OldTuple, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := d.row(id, lakeformat.OpTruncate, nil, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyChanged reports whether an update moved a row to another key: whether
// the old tuple has other values than the new one in the table's key
// columns (rel.keys: the primary key, else the replica identity). Under
// REPLICA IDENTITY FULL the old tuple holds every column, so the identity
// flags cannot tell; a key-only old tuple holds the identity columns only,
// so only the key columns among them are compared (all identity columns
// when none is). In a table without a key (a multiset) every update moves
// its row: the old row must go even when the new one equals it.
func keyChanged(rel *relation, old, nu *pglogrepl.TupleData, keyOnly bool) bool {
	if len(rel.keys) == 0 {
		return true
	}
	isKey := make(map[string]bool, len(rel.keys))
	for _, k := range rel.keys {
		isKey[k] = true
	}
	compare := func(i int) bool {
		c := rel.cols[i]
		return isKey[c.name] && (!keyOnly || c.key)
	}
	some := false
	for i := range rel.cols {
		some = some || compare(i)
	}
	if !some {
		compare = func(i int) bool { return rel.cols[i].key }
	}
	for i := range rel.cols {
		if !compare(i) || i >= len(old.Columns) || i >= len(nu.Columns) {
			continue
		}
		o, n := old.Columns[i], nu.Columns[i]
		if n.DataType == pglogrepl.TupleDataTypeToast || o.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		if o.DataType != n.DataType || string(o.Data) != string(n.Data) {
			return true
		}
	}
	return false
}

// relation applies a Relation message. Its look-ups in the lake and the
// source (and the record of a reload, onRewrite) hold up the stream: they
// are bounded together by timeout (--flush-timeout), past which the
// message fails the stream.
func (d *decoder) relation(ctx context.Context, m *pglogrepl.RelationMessage) (err error) {
	ctx, cancel := within(ctx, d.timeout)
	defer cancel()
	defer func() { err = timedOut(ctx, err) }()
	rel := &relation{id: m.RelationID, schema: m.Namespace, name: m.RelationName}
	var attrs map[string]attribute
	if d.attributes != nil {
		var err error
		if attrs, err = d.attributes(ctx, m.RelationID); err != nil {
			return err
		}
	}
	fields := make([]arrow.Field, 0, len(m.Columns)+len(lakeformat.MetaFields()))
	for _, c := range m.Columns {
		dec, err := d.reg.Column(ctx, c.DataType, c.TypeModifier)
		if err != nil {
			return fmt.Errorf("column %s of %s.%s: %w", c.Name, m.Namespace, m.RelationName, err)
		}
		rel.cols = append(rel.cols, relColumn{name: c.Name, oid: c.DataType, mod: c.TypeModifier, key: c.Flags&1 != 0, dec: dec})
		f := arrow.Field{Name: c.Name, Type: dec.ArrowType(), Nullable: true}
		if a := attrs[c.Name]; a.missing && a.value != nil {
			v, err := defaultJSON(dec, *a.value)
			if err != nil {
				return fmt.Errorf("default of column %s of %s.%s: %w", c.Name, m.Namespace, m.RelationName, err)
			}
			f.Metadata = arrow.NewMetadata([]string{metaDefault}, []string{v})
		}
		fields = append(fields, f)
	}
	var md *arrow.Metadata
	old, seen := d.rels[m.RelationID]
	// the columns before this message: as this session last saw them, else
	// as the lake last committed them, so that a rename made while
	// cdclake was stopped is still a rename
	var prev []typedColumn
	switch {
	case seen:
		for _, c := range old.cols {
			prev = append(prev, typedColumn{c.name, c.dec.PGType()})
		}
	case d.lakeTypes != nil:
		var err error
		if prev, err = d.lakeTypes(ctx, rel.schema, rel.name); err != nil {
			return err
		}
	}
	renamed := renames(prev, rel.cols)
	if len(renamed) > 0 {
		js, _ := json.Marshal(renamed)
		m := arrow.NewMetadata([]string{metaRenames}, []string{string(js)})
		md = &m
	}
	rel.arrow = arrow.NewSchema(append(fields, lakeformat.MetaFields()...), md)
	key := rel.schema + "." + rel.name
	rel.buf = d.tables[key]
	switch {
	case seen:
		rel.committed, rel.missing = old.committed, old.missing
	case rel.buf != nil:
		rel.committed = rel.buf.rel.committed
	default:
		committed, exists, err := d.lookup(ctx, rel.schema, rel.name)
		if err != nil {
			return err
		}
		rel.committed, rel.missing = committed, !exists
	}
	// the key: the primary key, else the replica identity index; a table
	// with REPLICA IDENTITY FULL and neither has none (the snapshot path
	// uses the same lookup)
	switch {
	case d.primaryKey != nil:
		var err error
		if rel.keys, err = d.primaryKey(ctx, m.RelationID); err != nil {
			return err
		}
	case m.ReplicaIdentity != 'f':
		rel.keys = identityColumns(rel)
	}
	d.rels[m.RelationID] = rel
	if d.onRewrite != nil && !rel.missing && !(d.inTx && d.tx.commitLSN < rel.committed) {
		var before map[string]string // column -> PostgreSQL type before this message
		if prev != nil {
			before = map[string]string{}
			for _, c := range prev {
				before[c.name] = c.typ
			}
		}
		to := map[string]bool{}
		for _, r := range renamed {
			to[r[1]] = true
		}
		if why := rewritten(before, rel.cols, attrs, to); why != "" {
			return d.onRewrite(ctx, rel.schema, rel.name, why)
		}
	}
	return nil
}

// rewritten says why the rows of a table may hold values that no change
// carries, given its columns' types before a Relation message (nil:
// unknown), its columns now and their catalog attributes; "" when they
// cannot. PostgreSQL rewrites a table, sending nothing, when a column is
// added with a default it computes per row (a volatile default, an
// identity) and for most type changes (ALTER COLUMN ... TYPE, USING).
func rewritten(before map[string]string, cols []relColumn, attrs map[string]attribute, renamed map[string]bool) string {
	if before == nil {
		return ""
	}
	for _, c := range cols {
		was, ok := before[c.name]
		now := c.dec.PGType()
		switch {
		case !ok && !renamed[c.name] && attrs[c.name].filled:
			return fmt.Sprintf("column %s was added with a default computed for each row", c.name)
		case ok && was != now && !keepsValues(was, now):
			return fmt.Sprintf("column %s changed type from %s to %s", c.name, was, now)
		}
	}
	return ""
}

// keepsValues reports whether a change of a column's type from one
// PostgreSQL type to another keeps every value as the lake holds it: a
// widening the lake applies in place (an Iceberg promotion, or the same
// lake type). Any other type change reloads the table. (A USING clause
// that rewrites values without changing the type is not seen.)
func keepsValues(from, to string) bool {
	base := func(t string) (string, []int) {
		name, args, ok := strings.Cut(t, "(")
		if !ok {
			return t, nil
		}
		var out []int
		for _, a := range strings.Split(strings.TrimSuffix(args, ")"), ",") {
			n, err := strconv.Atoi(a)
			if err != nil {
				return t, nil
			}
			out = append(out, n)
		}
		return name, out
	}
	fn, fa := base(from)
	tn, ta := base(to)
	switch {
	case from == "smallint" && (to == "integer" || to == "bigint"), from == "integer" && to == "bigint",
		from == "real" && to == "double precision":
		return true
	case (fn == "character varying" || fn == "text") && (tn == "text" || (tn == "character varying" && ta == nil)):
		return true
	case fn == "character varying" && tn == "character varying":
		return fa != nil && ta[0] >= fa[0]
	case fn == "numeric" && tn == "numeric":
		// same scale, more digits: a wider decimal
		return len(fa) == 2 && len(ta) == 2 && ta[1] == fa[1] && ta[0] >= fa[0]
	}
	return false
}

// defaultJSON decodes a column value given as PostgreSQL text and returns
// it as the JSON value Arrow writes for it (array.FromJSON reads it back).
func defaultJSON(dec *pgarrow.Column, text string) (string, error) {
	b := array.NewBuilder(memory.DefaultAllocator, dec.ArrowType())
	defer b.Release()
	if err := dec.Append(b, []byte(text)); err != nil {
		return "", err
	}
	arr := b.NewArray()
	defer arr.Release()
	js, err := arr.MarshalJSON()
	if err != nil {
		return "", err
	}
	var vals []json.RawMessage
	if err := json.Unmarshal(js, &vals); err != nil || len(vals) != 1 {
		return "", fmt.Errorf("encode %q as JSON: %s", text, js)
	}
	return string(vals[0]), nil
}

// renames finds columns that kept their position and type but not their
// name between two versions of a relation (ALTER TABLE ... RENAME COLUMN).
func renames(old []typedColumn, nu []relColumn) [][2]string {
	oldNames, newNames := map[string]bool{}, map[string]bool{}
	for _, c := range old {
		oldNames[c.name] = true
	}
	for _, c := range nu {
		newNames[c.name] = true
	}
	var out [][2]string
	for i, c := range nu {
		if i < len(old) && !oldNames[c.name] && !newNames[old[i].name] && old[i].typ == c.dec.PGType() {
			out = append(out, [2]string{old[i].name, c.name})
		}
	}
	return out
}

// typedColumn is a column's name and PostgreSQL type.
type typedColumn struct{ name, typ string }

// pgTypes returns the JSON object of the columns' PostgreSQL types, its
// keys in the columns' order (lakePGTypes reads the order back).
func (rel *relation) pgTypes() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range rel.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.name)
		v, _ := json.Marshal(c.dec.PGType())
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

func identityColumns(rel *relation) []string {
	var ks []string
	for _, c := range rel.cols {
		if c.key {
			ks = append(ks, c.name)
		}
	}
	return ks
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
	if rel.missing {
		rel.missing = false
		if d.onNew != nil {
			d.onNew(rel.schema, rel.name)
		}
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
	if tb.rel != rel {
		// a new Relation message: rows from here on have its columns
		if !tb.rel.arrow.Equal(rel.arrow) {
			tb.finish()
			tb.b.Release()
			tb.b = array.NewRecordBuilder(memory.DefaultAllocator, rel.arrow)
		}
		tb.rel = rel
	}
	if tb.txn != d.tx.n {
		tb.txn, tb.txRows = d.tx.n, 0
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
	appendCDC(tb.b, n, op, int64(d.tx.commitLSN), d.tx.seq, d.tx.xid, arrow.Timestamp(d.tx.commitTime.UnixMicro()), unchanged)
	d.tx.seq++
	tb.part++
	tb.rows++
	tb.txRows++
	d.rows++
	d.bytes += 48
	return nil
}

// finish closes the builder's current part.
func (tb *tableBuffer) finish() {
	if tb.part > 0 {
		tb.done = append(tb.done, tb.b.NewRecordBatch())
		tb.part = 0
	}
}

// abort drops the rows of the transaction being received.
func (d *decoder) abort() {
	if !d.inTx {
		return
	}
	for _, tb := range d.tx.touched {
		tb.finish()
		drop := tb.txRows
		tb.rows -= drop
		d.rows -= drop
		tb.txRows = 0
		for drop > 0 {
			last := tb.done[len(tb.done)-1]
			n := int(last.NumRows())
			if n <= drop {
				tb.done = tb.done[:len(tb.done)-1]
			} else {
				tb.done[len(tb.done)-1] = last.NewSlice(0, int64(n-drop))
			}
			last.Release()
			drop -= min(n, drop)
		}
	}
	d.inTx = false
}

// cut hands over every buffered row as a batch ending at the last complete
// transaction. Between transactions only, except for a partial batch: the
// rows so far of a large transaction, written but committed only with the
// batch that ends it.
func (d *decoder) cut(partial bool) *batch {
	b := &batch{endLSN: d.endLSN, commitTime: d.commitTime, rows: d.rows, bytes: d.bytes, partial: partial}
	if partial && d.inTx {
		d.tx.split = true
	}
	for _, tb := range d.tables {
		if tb.rows == 0 {
			continue
		}
		tb.finish()
		b.tables = append(b.tables, tableBatch{schema: tb.rel.schema, name: tb.rel.name, keys: tb.rel.keys, pgTypes: tb.rel.pgTypes(), parts: tb.done})
		tb.done, tb.rows, tb.txRows = nil, 0, 0
	}
	d.rows, d.bytes, d.txStart = 0, 0, 0
	return b
}

// batch is a set of complete transactions to commit together.
type batch struct {
	partial    bool // rows of a transaction that continues in the next batch
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
	pgTypes      string // JSON column -> PostgreSQL type
	partitions   string // a snapshot's lakeformat.PropPartitions, "" for none
	parts        []arrow.RecordBatch
}

func (tb tableBatch) release() {
	for _, p := range tb.parts {
		p.Release()
	}
}
