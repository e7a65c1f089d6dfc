package compact

import (
	"cmp"
	"fmt"
	"slices"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/lakeformat"
)

// version is one state of a row produced by a change. A column the change
// did not send (unchanged TOAST, or the non-key columns of a key-only
// delete) takes its value from x.prev, else from the base (snapshot) row of
// x.baseKey, else from x.alt; failing all three it is NULL.
type version struct {
	row     int32 // change row; -1 for "the base row of x.baseKey"
	first   int32 // length of the first key column's encoding in the key
	deleted bool  // a delete; x.prev is the row before it
	x       *versionExtra
}

// versionExtra is the rarely needed part of a version.
type versionExtra struct {
	unsent  []int // output columns not sent
	prev    *version
	baseKey string
	alt     *version
}

// folded is the net effect of a set of changes: the last version of
// every key they touch.
type folded struct {
	keys      map[string]*version
	links     [][2]string // keys whose old rows must be read together
	truncated bool        // a truncate: the base is empty
	rows      int
}

// changeSet is the changelog rows of one compaction.
type changeSet struct {
	cols map[string]arrow.Array // every column by name
	n    int
	op   *array.String
	lsn  *array.Int64
	seq  *array.Int64
	unch *array.List
}

func newChangeSet(rec arrow.RecordBatch) (*changeSet, error) {
	cs := &changeSet{cols: map[string]arrow.Array{}, n: int(rec.NumRows())}
	for i, f := range rec.Schema().Fields() {
		cs.cols[f.Name] = rec.Column(i)
	}
	var ok bool
	if cs.op, ok = cs.cols[lakeformat.ColOp].(*array.String); !ok {
		return nil, fmt.Errorf("changelog column %s missing or not a string", lakeformat.ColOp)
	}
	if cs.lsn, ok = cs.cols[lakeformat.ColLSN].(*array.Int64); !ok {
		return nil, fmt.Errorf("changelog column %s missing or not int64", lakeformat.ColLSN)
	}
	if cs.seq, ok = cs.cols[lakeformat.ColSeq].(*array.Int64); !ok {
		return nil, fmt.Errorf("changelog column %s missing or not int64", lakeformat.ColSeq)
	}
	cs.unch, _ = cs.cols[lakeformat.ColUnchanged].(*array.List)
	return cs, nil
}

// keyEncoders returns the encoders of the named key columns of cols.
func keyEncoders(cols map[string]arrow.Array, keys []string) ([]keyEncoder, error) {
	encs := make([]keyEncoder, len(keys))
	for i, k := range keys {
		arr, ok := cols[k]
		if !ok {
			return nil, fmt.Errorf("key column %s missing", k)
		}
		enc, err := newKeyEncoder(arr)
		if err != nil {
			return nil, fmt.Errorf("key column %s: %w", k, err)
		}
		encs[i] = enc
	}
	return encs, nil
}

// keyArena holds the key encodings of many rows in one allocation.
type keyArena struct {
	buf   []byte
	offs  []int32
	first []int32 // length of each key's first column
}

// add encodes the key of row i.
func (a *keyArena) add(encs []keyEncoder, i int) {
	start := len(a.buf)
	for e, enc := range encs {
		a.buf = enc(a.buf, i)
		if e == 0 {
			a.first = append(a.first, int32(len(a.buf)-start))
		}
	}
	a.offs = append(a.offs, int32(start))
}

// key returns the n-th key. Call it only once every key is added: the
// strings share the arena's memory.
func (a *keyArena) key(n int) string {
	end := len(a.buf)
	if n+1 < len(a.offs) {
		end = int(a.offs[n+1])
	}
	if end == int(a.offs[n]) {
		return ""
	}
	return unsafe.String(&a.buf[a.offs[n]], end-int(a.offs[n]))
}

// fold applies the changes in (_cdc_lsn, _cdc_seq) order. outCols are
// the output column names, indexing versionExtra.unsent.
func fold(cs *changeSet, keys []string, outCols []string) (*folded, error) {
	f := &folded{keys: map[string]*version{}}
	if cs.n == 0 {
		return f, nil
	}
	order := make([]int32, cs.n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		if c := cmp.Compare(cs.lsn.Value(int(i)), cs.lsn.Value(int(j))); c != 0 {
			return c
		}
		return cmp.Compare(cs.seq.Value(int(i)), cs.seq.Value(int(j)))
	})
	start := 0
	for p := len(order) - 1; p >= 0; p-- {
		if cs.op.Value(int(order[p])) == lakeformat.OpTruncate {
			start, f.truncated = p+1, true
			break
		}
	}
	order = order[start:]
	encs, err := keyEncoders(cs.cols, keys)
	if err != nil {
		return nil, err
	}
	var arena keyArena
	for _, i := range order {
		arena.add(encs, int(i))
	}
	colIdx := map[string]int{}
	for i, c := range outCols {
		colIdx[c] = i
	}
	f.keys = make(map[string]*version, len(order)/2)
	slab := make([]version, len(order))
	var prevVer *version
	for p, i := range order {
		op := cs.op.Value(int(i))
		if op == lakeformat.OpTruncate {
			continue
		}
		key := arena.key(p)
		v := &slab[p]
		*v = version{row: i, first: arena.first[p]}
		// the 'd' just before in the same transaction, when the change
		// moved a row from another key (or, as ingest wrote every update
		// under REPLICA IDENTITY FULL before it compared primary keys, from
		// the same key): the old row's values, then those before it
		var moved *version
		if p > 0 && prevVer != nil && prevVer.deleted {
			j := int(order[p-1])
			if cs.lsn.Value(j) == cs.lsn.Value(int(i)) && cs.seq.Value(j) == cs.seq.Value(int(i))-1 {
				moved = prevVer
			}
		}
		cur := f.keys[key]
		switch op {
		case lakeformat.OpInsert, lakeformat.OpRead, lakeformat.OpUpdate:
			if unsent := unsentCols(cs, int(i), colIdx); len(unsent) > 0 {
				v.x = &versionExtra{unsent: unsent}
				switch {
				case cur != nil && !cur.deleted:
					v.x.prev = cur
				case cur != nil: // the key was freed in this batch: a move into it
					v.x.prev = moved
				default:
					if !f.truncated {
						v.x.baseKey = key
					}
					v.x.alt = moved
				}
				if moved != nil {
					for _, bk := range baseKeys(moved) {
						if bk != key {
							f.links = append(f.links, [2]string{key, bk})
						}
					}
				}
			}
		case lakeformat.OpDelete:
			v.deleted = true
			// a key-only delete names the columns it lacks
			v.x = &versionExtra{unsent: unsentCols(cs, int(i), colIdx)}
			switch {
			case cur != nil && !cur.deleted:
				v.x.prev = cur
			case cur == nil && !f.truncated:
				v.x.prev = &version{row: -1, first: v.first, x: &versionExtra{baseKey: key}}
			}
		default:
			return nil, fmt.Errorf("change with unknown %s %q at lsn %d", lakeformat.ColOp, op, cs.lsn.Value(int(i)))
		}
		f.keys[key] = v
		prevVer = v
		f.rows++
	}
	return f, nil
}

// unsentCols returns the output columns named in row i's _cdc_unchanged.
func unsentCols(cs *changeSet, i int, colIdx map[string]int) []int {
	if cs.unch == nil || cs.unch.IsNull(i) {
		return nil
	}
	vals, ok := cs.unch.ListValues().(*array.String)
	if !ok {
		return nil
	}
	s, e := cs.unch.ValueOffsets(i)
	var out []int
	for j := s; j < e; j++ {
		if c, ok := colIdx[vals.Value(int(j))]; ok {
			out = append(out, c)
		}
	}
	return out
}

// baseKeys lists the base rows a version may take values from.
func baseKeys(v *version) []string {
	var out []string
	seen := map[*version]bool{}
	var walk func(v *version)
	walk = func(v *version) {
		if v == nil || v.x == nil || seen[v] {
			return
		}
		seen[v] = true
		if v.x.baseKey != "" {
			out = append(out, v.x.baseKey)
		}
		walk(v.x.prev)
		walk(v.x.alt)
	}
	walk(v)
	return out
}

// Sources of output values: a base row (>= 0), NULL (-1), or change row r
// as -(r+2).
const srcNull = -1

func changeSrc(r int32) int32 { return -r - 2 }

// resolve finds the source of output column c of version v; base looks
// up the base row of a key.
func resolve(v *version, c int, base func(string) (int32, bool)) int32 {
	for v != nil {
		if v.row >= 0 && (v.x == nil || !slices.Contains(v.x.unsent, c)) {
			return changeSrc(v.row)
		}
		if v.x == nil {
			break
		}
		if v.x.prev != nil {
			v = v.x.prev
			continue
		}
		if v.x.baseKey != "" {
			if r, ok := base(v.x.baseKey); ok {
				return r
			}
		}
		v = v.x.alt
	}
	return srcNull
}
