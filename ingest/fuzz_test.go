package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/ingest/pgarrow"
)

// The fuzz tests drive the receive path of a stream (stream.copyData:
// pglogrepl.ParseV2, the spool of streamed transactions, the decoder and
// the cutting of batches) with no server and no lake: cut batches are
// checked and dropped. Nothing may panic; errors are fine, and end the
// input as they end a real stream. Seeds: testdata/fuzz/<name>.

// fuzzHarness is a stream whose flusher only checks batches.
type fuzzHarness struct {
	st   *stream
	done chan struct{}
	bad  error
}

func newFuzzHarness(t *testing.T) *fuzzHarness {
	dec := newDecoder(pgarrow.NewRegistry(nil), func(context.Context, string, string) (uint64, bool, error) {
		return 0, true, nil
	})
	o := Options{Source: "fuzz", MemoryBudget: 64 << 10, SpillDir: t.TempDir(), FlushRows: 4,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}.withDefaults("fuzz")
	h := &fuzzHarness{st: newStream(nil, dec, nil, o, 0, 0), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for b := h.st.next(); b != nil; b = h.st.next() {
			for _, tb := range b.tables {
				for _, part := range tb.parts {
					if err := array.ValidateRecordFull(part); err != nil && h.bad == nil {
						h.bad = fmt.Errorf("batch of %s.%s: invalid record: %w", tb.schema, tb.name, err)
					}
				}
				tb.release()
			}
			h.st.done()
		}
	}()
	return h
}

// feed passes each message to the stream as the XLogData the server
// would send, until the stream returns an error. A panic fails the test
// (rather than ending the test binary, which would hide the package's
// other tests).
func (h *fuzzHarness) feed(t *testing.T, msgs [][]byte) {
	for i, m := range msgs {
		frame := make([]byte, 25, 25+len(m))
		frame[0] = 'w'
		binary.BigEndian.PutUint64(frame[1:], uint64(i)*100)
		binary.BigEndian.PutUint64(frame[9:], uint64(i)*100+100)
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					typ := "empty"
					if len(m) > 0 {
						typ = fmt.Sprintf("%q", m[0])
					}
					t.Fatalf("BUG: the receive path panics on pgoutput message %d (type %s, %d bytes: %x): %v", i, typ, len(m), m[:min(len(m), 48)], r)
				}
			}()
			err = h.st.copyData(context.Background(), append(frame, m...))
		}()
		if err != nil {
			return
		}
	}
}

func (h *fuzzHarness) close(t *testing.T) {
	h.st.closeQueue()
	<-h.done
	h.st.spool.close()
	if h.bad != nil {
		t.Fatal(h.bad)
	}
}

// splitFrames reads messages prefixed by a 2-byte length.
func splitFrames(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func joinFrames(msgs [][]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

// FuzzPgoutputBytes feeds arbitrary bytes as pgoutput messages (each
// prefixed by a 2-byte length in the input).
func FuzzPgoutputBytes(f *testing.F) {
	for _, p := range fuzzSeedPrograms {
		f.Add(joinFrames(encodeProgram(p)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newFuzzHarness(t)
		defer h.close(t)
		h.feed(t, splitFrames(data))
	})
}

// FuzzPgoutputMessages interprets the input as a program of well-formed
// pgoutput messages (relations of various types, transactions, changes
// with text, null and unchanged-TOAST values, streamed transactions with
// aborts of subtransactions) in any order, so that the fuzzer explores
// the decoder rather than the parser.
func FuzzPgoutputMessages(f *testing.F) {
	for _, p := range fuzzSeedPrograms {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, program []byte) {
		h := newFuzzHarness(t)
		defer h.close(t)
		h.feed(t, encodeProgram(program))
	})
}

// fuzzSeedPrograms are programs for encodeProgram: a plain transaction
// with every change kind, and a streamed one with a subtransaction abort.
var fuzzSeedPrograms = [][]byte{
	{opRelation, 1, 3, opBegin, opInsert, 1, opInsert, 1, opUpdate, 1, 0, opUpdate, 1, 1, opDelete, 1, 0, opCommit, opBegin, opTruncate, 1, opCommit},
	{opRelation, 2, 5, opStreamStart, 7, opRelation, 2, 4, opInsert, 2, opInsert, 2, opStreamStop, opStreamStart, 7, opUpdate, 2, 2, opStreamAbort, 7, 1, opStreamStop, opStreamCommit, 7},
	{opRelation, 0, 7, opBegin, opInsert, 0, opInsert, 0, opInsert, 0, opInsert, 0, opInsert, 0, opCommit, opBegin, opDelete, 0, 1, opCommit},
}

// Program operations; each reads its arguments from the bytes after it.
const (
	opRelation = iota
	opBegin
	opCommit
	opInsert
	opUpdate
	opDelete
	opTruncate
	opStreamStart
	opStreamStop
	opStreamCommit
	opStreamAbort
	opOther // a Type or logical decoding message, which ingest ignores
	numOps
)

// fuzzTypes are the column types relations draw from: scalars of every
// decoder kind, arrays, and an OID no registry knows.
var fuzzTypes = []uint32{23, 20, 21, 25, 1700, 16, 1184, 1114, 1082, 1083, 1186, 17, 2950, 3802, 700, 701, 790, 1007, 1009, 1231, 1185, 869, 99999}

// fuzzValues are texts that decode for some types; the program also
// uses its own bytes as values.
var fuzzValues = []string{"1", "-32768", "9223372036854775807", "3.14", "NaN", "-Infinity", "t", "f",
	"2024-02-29 12:34:56.789+05:30", "infinity", "2024-02-29", "12:00:00", "1 day 02:03:04", `\x00ff`,
	"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `{"a": [1, 2]}`, "$1,234.56", "{1,NULL,3}", `{"a b",c}`,
	"{1.5,NaN}", "10.0.0.1/8", "", "x"}

type progReader struct {
	b []byte
	i int
}

func (p *progReader) next() byte {
	if p.i >= len(p.b) {
		return 0
	}
	p.i++
	return p.b[p.i-1]
}

func (p *progReader) n(limit int) int { return int(p.next()) % limit }

// encodeProgram turns a program into pgoutput messages (protocol 2).
func encodeProgram(program []byte) [][]byte {
	p := &progReader{b: program}
	type rel struct {
		id    uint32
		ncols int
	}
	var (
		rels     []rel
		msgs     [][]byte
		xid      uint32 = 700
		lsn      uint64 = 1 << 24
		inStream bool
		streamed []uint32 // streamed transactions begun
	)
	ts := func(b []byte) []byte { return binary.BigEndian.AppendUint64(b, uint64(time.Hour.Microseconds())) }
	u32 := binary.BigEndian.AppendUint32
	u64 := binary.BigEndian.AppendUint64
	head := func(t byte, top uint32) []byte {
		m := []byte{t}
		if inStream {
			m = u32(m, top)
		}
		return m
	}
	relID := func() uint32 {
		if len(rels) == 0 || p.n(8) == 0 {
			return uint32(1 + p.n(4)) // maybe unknown
		}
		return rels[p.n(len(rels))].id
	}
	ncolsOf := func(id uint32) int {
		for _, r := range rels {
			if r.id == id {
				return r.ncols
			}
		}
		return 1 + p.n(3)
	}
	tuple := func(m []byte, ncols int) []byte {
		if p.n(16) == 0 {
			ncols += p.n(3) - 1 // a column more or fewer than the relation
		}
		ncols = max(ncols, 0)
		m = binary.BigEndian.AppendUint16(m, uint16(ncols))
		for range ncols {
			switch k := p.n(10); {
			case k == 0:
				m = append(m, 'n')
			case k == 1:
				m = append(m, 'u')
			default:
				var v []byte
				if k < 8 {
					v = []byte(fuzzValues[p.n(len(fuzzValues))])
				} else {
					v = make([]byte, p.n(12))
					for i := range v {
						v[i] = p.next()
					}
					// a UTF8 server sends valid UTF-8 (SQL_ASCII is another matter:
					// see internal/chaos TestChaosSQLASCIISource)
					v = []byte(strings.ToValidUTF8(string(v), "?"))
				}
				m = append(m, 't')
				m = u32(m, uint32(len(v)))
				m = append(m, v...)
			}
		}
		return m
	}
	top := func() uint32 {
		if len(streamed) > 0 && p.n(4) != 0 {
			return streamed[p.n(len(streamed))]
		}
		xid++
		streamed = append(streamed, xid)
		return xid
	}
	cur := xid
	for steps := 0; p.i < len(p.b) && steps < 200; steps++ {
		switch op := p.n(numOps); op {
		case opRelation:
			id := uint32(p.n(4))
			ncols := 1 + p.n(8)
			m := head('R', cur)
			m = u32(m, id)
			m = append(m, "public\x00"...)
			m = append(m, fmt.Sprintf("t%d\x00", id)...)
			m = append(m, 'd')
			m = binary.BigEndian.AppendUint16(m, uint16(ncols))
			for c := range ncols {
				flags := byte(0)
				if c == 0 || p.n(6) == 0 {
					flags = 1
				}
				m = append(m, flags)
				m = append(m, fmt.Sprintf("c%d\x00", (c+p.n(2))%ncols)...) // sometimes a duplicate name
				m = u32(m, fuzzTypes[p.n(len(fuzzTypes))])
				mod := int32(-1)
				if p.n(4) == 0 {
					mod = int32(p.next())<<16 | int32(p.next()) + 4
				}
				m = u32(m, uint32(mod))
			}
			rels = append(rels, rel{id, ncols})
			msgs = append(msgs, m)
		case opBegin:
			xid++
			cur = xid
			lsn += 1000
			msgs = append(msgs, u32(ts(u64([]byte{'B'}, lsn)), xid))
		case opCommit:
			m := u64(u64([]byte{'C', 0}, lsn), lsn+100)
			lsn += 200
			msgs = append(msgs, ts(m))
		case opInsert:
			id := relID()
			m := u32(head('I', cur), id)
			msgs = append(msgs, tuple(append(m, 'N'), ncolsOf(id)))
		case opUpdate:
			id := relID()
			m := u32(head('U', cur), id)
			switch p.n(3) {
			case 1:
				m = tuple(append(m, 'K'), ncolsOf(id))
			case 2:
				m = tuple(append(m, 'O'), ncolsOf(id))
			}
			msgs = append(msgs, tuple(append(m, 'N'), ncolsOf(id)))
		case opDelete:
			id := relID()
			kind := byte('K')
			if p.n(2) == 1 {
				kind = 'O'
			}
			msgs = append(msgs, tuple(append(u32(head('D', cur), id), kind), ncolsOf(id)))
		case opTruncate:
			n := 1 + p.n(3)
			m := append(u32(head('T', cur), uint32(n)), byte(p.n(4)))
			for range n {
				m = u32(m, relID())
			}
			msgs = append(msgs, m)
		case opStreamStart:
			cur = top()
			inStream = true
			msgs = append(msgs, append(u32([]byte{'S'}, cur), byte(p.n(2))))
		case opStreamStop:
			inStream = false
			msgs = append(msgs, []byte{'E'})
		case opStreamCommit:
			x := top()
			m := u64(u64(append(u32([]byte{'c'}, x), 0), lsn), lsn+100)
			lsn += 200
			msgs = append(msgs, ts(m))
		case opStreamAbort:
			x := top()
			sub := x
			if p.n(2) == 1 {
				sub = x + uint32(1+p.n(3))
			}
			msgs = append(msgs, u32(u32([]byte{'A'}, x), sub))
		case opOther:
			if p.n(2) == 0 {
				m := u32(head('Y', cur), 16384)
				m = append(m, "public\x00mood\x00"...)
				msgs = append(msgs, m)
			} else {
				m := head('M', cur)
				m = append(m, 1)
				m = u64(m, lsn)
				m = append(m, "prefix\x00"...)
				msgs = append(msgs, append(u32(m, 2), "hi"...))
			}
		}
	}
	return msgs
}

// FuzzSplitCopyRow checks splitCopyRow against COPY's own rules: without
// an error it returns one field per tab, \N alone is NULL, and a field
// without a backslash is returned as is; and fields escaped as COPY
// escapes them split back to themselves.
func FuzzSplitCopyRow(f *testing.F) {
	for _, s := range []string{"1\tabc\t\\N", "a\\tb\tc\\\\d\te\\nf", "\\x41\\101\t", "\\\\N", "", "\\", "\\x", "\\777\\0\\x4g", "\t\t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = append([]byte{}, line...) // COPY hands over a non-nil line, empty or not
		fields, _, err := splitCopyRow(line, nil, nil)
		if err != nil {
			return
		}
		raw := bytes.Split(line, []byte{'\t'})
		if len(fields) != len(raw) {
			t.Fatalf("%q: %d fields, %d tabs", line, len(fields), len(raw)-1)
		}
		for i, r := range raw {
			switch {
			case string(r) == `\N`:
				if fields[i] != nil {
					t.Fatalf("%q field %d: \\N is %q, want NULL", line, i, fields[i])
				}
			case fields[i] == nil:
				t.Fatalf("%q field %d: %q is NULL", line, i, r)
			case bytes.IndexByte(r, '\\') < 0 && !bytes.Equal(fields[i], r):
				t.Fatalf("%q field %d: %q became %q", line, i, r, fields[i])
			}
		}
		// the values, escaped again, split back to themselves
		var esc [][]byte
		for _, v := range fields {
			if v == nil {
				esc = append(esc, []byte(`\N`))
				continue
			}
			var e []byte
			for _, c := range v {
				switch c {
				case '\\':
					e = append(e, `\\`...)
				case '\t':
					e = append(e, `\t`...)
				case '\n':
					e = append(e, `\n`...)
				case '\r':
					e = append(e, `\r`...)
				default:
					e = append(e, c)
				}
			}
			esc = append(esc, e)
		}
		again, _, err := splitCopyRow(append([]byte{}, bytes.Join(esc, []byte{'\t'})...), nil, nil)
		if err != nil {
			t.Fatalf("%q: re-escaped row: %v", line, err)
		}
		if len(again) != len(fields) {
			t.Fatalf("%q: %d fields after re-escaping, want %d", line, len(again), len(fields))
		}
		for i := range fields {
			if (again[i] == nil) != (fields[i] == nil) || !bytes.Equal(again[i], fields[i]) {
				t.Fatalf("%q field %d: %q after re-escaping, want %q", line, i, again[i], fields[i])
			}
		}
	})
}

// TestFuzzPgoutputHugeLength feeds an insert whose one column claims to be
// 2 GiB long in a message of a few bytes: the receive path must refuse it
// without allocating what the length says (a damaged spill file, or a
// server bug, must not take the process's memory).
func TestFuzzPgoutputHugeLength(t *testing.T) {
	msgs := encodeProgram([]byte{opRelation, 1, 0, opBegin})
	insert := binary.BigEndian.AppendUint32([]byte{'I'}, 1)
	insert = append(insert, 'N', 0, 1, 't')
	insert = binary.BigEndian.AppendUint32(insert, 0x7FFFFFF0)
	insert = append(insert, "abc"...)
	h := newFuzzHarness(t)
	defer h.close(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.feed(t, append(msgs, insert))
	runtime.ReadMemStats(&after)
	if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 64 {
		t.Errorf("BUG: a %d-byte insert message made the receive path allocate %d MiB (pglogrepl allocates a column's declared length before it checks it)", len(insert), mib)
	}
}
