package pgwire

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdclake/cdclake/query"
)

// The extended query protocol: Parse stores a statement, Describe reports
// its shape, Bind makes a portal with parameters and result formats,
// Execute runs it (the result is held by the portal until it is closed or
// the Sync ends an unnamed one).

func (st *statement) empty() bool {
	return len(splitStatements(st.sql)) == 0
}

func (ss *session) fail(err error) {
	ss.sendError(err)
	ss.failed = true
}

// errMultiple: a prepared statement holds one statement only.
var errMultiple = errors.New("cannot insert multiple commands into a prepared statement")

func (ss *session) parse(m *pgproto3.Parse) {
	if len(splitStatements(m.Query)) > 1 {
		ss.fail(errMultiple)
		return
	}
	ss.stmts[m.Name] = &statement{sql: m.Query, params: append([]uint32{}, m.ParameterOIDs...)}
	ss.be.Send(&pgproto3.ParseComplete{})
}

func (ss *session) bind(m *pgproto3.Bind) {
	st := ss.stmts[m.PreparedStatement]
	if st == nil {
		ss.fail(fmt.Errorf("prepared statement %q does not exist", m.PreparedStatement))
		return
	}
	args := make([]any, len(m.Parameters))
	for i, v := range m.Parameters {
		var oid uint32
		if i < len(st.params) {
			oid = st.params[i]
		}
		a, err := decodeParam(v, formatAt(m.ParameterFormatCodes, i), oid)
		if err != nil {
			ss.fail(fmt.Errorf("parameter $%d: %w", i+1, err))
			return
		}
		if b, ok := a.([]byte); ok {
			a = append([]byte{}, b...) // the message buffer is reused
		}
		args[i] = a
	}
	if old := ss.portals[m.DestinationPortal]; old != nil {
		old.release()
	}
	ss.portals[m.DestinationPortal] = &portal{stmt: st, args: args, formats: append([]int16{}, m.ResultFormatCodes...)}
	ss.be.Send(&pgproto3.BindComplete{})
}

func formatAt(codes []int16, i int) int16 {
	switch {
	case len(codes) == 0:
		return 0
	case len(codes) == 1:
		return codes[0]
	case i < len(codes):
		return codes[i]
	}
	return 0
}

func (ss *session) describe(ctx context.Context, m *pgproto3.Describe) {
	if m.ObjectType == 'S' {
		st := ss.stmts[m.Name]
		if st == nil {
			ss.fail(fmt.Errorf("prepared statement %q does not exist", m.Name))
			return
		}
		if _, ok := sessionCommand(st.sql); ok || st.empty() {
			ss.be.Send(&pgproto3.ParameterDescription{})
			ss.be.Send(&pgproto3.NoData{})
			return
		}
		d, err := ss.eng().Describe(ctx, st.sql)
		if err != nil {
			ss.fail(err)
			return
		}
		st.desc = d
		for i, t := range d.Params {
			if i >= len(st.params) {
				st.params = append(st.params, oidOf(t))
			} else if st.params[i] == 0 {
				st.params[i] = oidOf(t)
			}
		}
		ss.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: st.params})
		if len(d.Columns) == 0 {
			ss.be.Send(&pgproto3.NoData{})
			return
		}
		ss.be.Send(&pgproto3.RowDescription{Fields: fieldsOf(d.Columns, nil)})
		return
	}
	p := ss.portals[m.Name]
	if p == nil {
		ss.fail(fmt.Errorf("portal %q does not exist", m.Name))
		return
	}
	if _, ok := sessionCommand(p.stmt.sql); ok || p.stmt.empty() {
		ss.be.Send(&pgproto3.NoData{})
		return
	}
	if err := ss.runPortal(ctx, p); err != nil {
		ss.fail(err)
		return
	}
	ss.be.Send(&pgproto3.RowDescription{Fields: p.fields})
}

// runPortal runs the portal's statement once and fixes its row format.
func (ss *session) runPortal(ctx context.Context, p *portal) error {
	if p.res != nil {
		return nil
	}
	res, err := ss.run(ctx, p.stmt.sql, p.args)
	if err != nil {
		return err
	}
	p.res = res
	cols := columnsOf(res.Schema)
	if d := p.stmt.desc; d != nil && len(d.Columns) == len(cols) {
		cols = d.Columns // what the client was told at Describe
	}
	p.fields = fieldsOf(cols, p.formats)
	return nil
}

func (ss *session) execute(ctx context.Context, m *pgproto3.Execute) {
	p := ss.portals[m.Portal]
	if p == nil {
		ss.fail(fmt.Errorf("portal %q does not exist", m.Portal))
		return
	}
	if tag, ok := sessionCommand(p.stmt.sql); ok {
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return
	}
	if p.stmt.empty() {
		ss.be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	if err := ss.runPortal(ctx, p); err != nil {
		ss.fail(err)
		return
	}
	if err := ss.sendRows(p, m.MaxRows); err != nil {
		ss.fail(err)
		return
	}
	if p.row < int(p.res.Rows) {
		ss.be.Send(&pgproto3.PortalSuspended{})
		return
	}
	ss.complete(p.res)
}

// sendRows sends the portal's next rows, at most max (0: all).
func (ss *session) sendRows(p *portal, max uint32) error {
	start, sent := 0, uint32(0)
	for _, rec := range p.res.Records {
		n := int(rec.NumRows())
		if p.row >= start+n {
			start += n
			continue
		}
		for i := p.row - start; i < n; i++ {
			if max > 0 && sent == max {
				return nil
			}
			vals := make([][]byte, rec.NumCols())
			for c := range vals {
				col := rec.Column(c)
				if col.IsNull(i) {
					continue
				}
				f := p.fields[c]
				if f.Format == 1 {
					b, err := encodeBinary(f.DataTypeOID, col, i)
					if err != nil {
						return fmt.Errorf("column %s: %w", f.Name, err)
					}
					vals[c] = b
				} else {
					s, _ := query.Text(col, i)
					vals[c] = []byte(s)
				}
			}
			ss.be.Send(&pgproto3.DataRow{Values: vals})
			p.row++
			sent++
		}
		start += n
	}
	return nil
}

func (p *portal) release() {
	if p.res != nil {
		p.res.Release()
		p.res = nil
	}
}

func columnsOf(sc *arrow.Schema) []query.Column {
	cols := make([]query.Column, sc.NumFields())
	for i, f := range sc.Fields() {
		cols[i] = query.Column{Name: f.Name, Type: query.TypeName(f.Type)}
	}
	return cols
}

// fieldsOf builds a row description; formats are Bind's result format
// codes (none: all text).
func fieldsOf(cols []query.Column, formats []int16) []pgproto3.FieldDescription {
	out := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		oid := oidOf(c.Type)
		size, ok := typeSize[oid]
		if !ok {
			size = -1
		}
		out[i] = pgproto3.FieldDescription{Name: []byte(c.Name), DataTypeOID: oid, DataTypeSize: size,
			TypeModifier: -1, Format: formatAt(formats, i)}
	}
	return out
}
