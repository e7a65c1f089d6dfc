package ingest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// spool keeps the messages of transactions that PostgreSQL streams while
// they run (pgoutput protocol 2), until their commit or abort. Messages
// stay in memory while the buffers of all transactions together fit in the
// budget; beyond it the transaction being received moves its buffered
// messages to a file in dir and lets its buffer go.
type spool struct {
	dir    string
	budget int64
	mem    int64 // capacity of every transaction's buf
	txns   map[uint32]*spooledTx
}

type spooledTx struct {
	buf      []byte // length-prefixed messages not yet in the file
	f        *os.File
	fileSize int64
	first    map[uint32]int64 // offset of each subtransaction's first message
}

func newSpool(dir string, budget int64) *spool {
	return &spool{dir: dir, budget: budget, txns: map[uint32]*spooledTx{}}
}

func (t *spooledTx) size() int64 { return t.fileSize + int64(len(t.buf)) }

// add appends one message of transaction xid, made by subtransaction sub.
func (s *spool) add(xid, sub uint32, msg []byte) error {
	t := s.txns[xid]
	if t == nil {
		t = &spooledTx{first: map[uint32]int64{}}
		s.txns[xid] = t
	}
	if _, ok := t.first[sub]; !ok {
		t.first[sub] = t.size()
	}
	had := cap(t.buf)
	t.buf = binary.BigEndian.AppendUint32(t.buf, uint32(len(msg)))
	t.buf = append(t.buf, msg...)
	s.mem += int64(cap(t.buf) - had)
	if s.mem > s.budget {
		return s.spill(xid, t)
	}
	return nil
}

// spill moves a transaction's buffered messages to its file and frees
// its buffer: memory goes back to the budget, not only length.
func (s *spool) spill(xid uint32, t *spooledTx) error {
	if t.f == nil {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return fmt.Errorf("create spill folder: %w", err)
		}
		f, err := os.CreateTemp(s.dir, fmt.Sprintf("xid-%d-*.spill", xid))
		if err != nil {
			return fmt.Errorf("create spill file: %w", err)
		}
		t.f = f
	}
	if _, err := t.f.WriteAt(t.buf, t.fileSize); err != nil {
		return fmt.Errorf("write spill file %s: %w", t.f.Name(), err)
	}
	t.fileSize += int64(len(t.buf))
	s.release(t)
	return nil
}

// release frees a transaction's buffer.
func (s *spool) release(t *spooledTx) {
	s.mem -= int64(cap(t.buf))
	t.buf = nil
}

// abort drops subtransaction sub of xid and everything after its first
// message (sub == xid drops the whole transaction), as PostgreSQL's own
// apply worker does.
func (s *spool) abort(xid, sub uint32) error {
	t := s.txns[xid]
	if t == nil {
		return nil
	}
	if sub == xid {
		s.drop(xid)
		return nil
	}
	off, ok := t.first[sub]
	if !ok {
		return nil // the subtransaction changed nothing
	}
	for k, v := range t.first {
		if v >= off {
			delete(t.first, k)
		}
	}
	if off >= t.fileSize {
		t.buf = t.buf[:off-t.fileSize]
		return nil
	}
	s.release(t)
	t.fileSize = off
	if err := t.f.Truncate(off); err != nil {
		return fmt.Errorf("truncate spill file: %w", err)
	}
	return nil
}

// each calls fn with every message of xid in order.
func (s *spool) each(xid uint32, fn func(msg []byte) error) error {
	t := s.txns[xid]
	if t == nil {
		return nil
	}
	var r io.Reader = bytes.NewReader(nil)
	if t.f != nil {
		r = io.NewSectionReader(t.f, 0, t.fileSize)
	}
	br := bufio.NewReaderSize(io.MultiReader(r, bytes.NewReader(t.buf)), 1<<20)
	var hdr [4]byte
	var msg []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read spilled transaction %d: %w", xid, err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if cap(msg) < int(n) {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(br, msg); err != nil {
			return fmt.Errorf("read spilled transaction %d: %w", xid, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}

// drop forgets a transaction and removes its file.
func (s *spool) drop(xid uint32) {
	t := s.txns[xid]
	if t == nil {
		return
	}
	s.release(t)
	if t.f != nil {
		t.f.Close()
		os.Remove(t.f.Name())
	}
	delete(s.txns, xid)
}

// close removes every spill file.
func (s *spool) close() {
	for xid := range s.txns {
		s.drop(xid)
	}
	_ = os.Remove(filepath.Clean(s.dir)) // only if empty
}
