package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
)

// Changelog metadata columns (DESIGN.md section 2). They are spelled out
// here rather than imported so that the reference resolver shares no code
// with ingest, compact or query.
const (
	colOp        = "_cdc_op"
	colLSN       = "_cdc_lsn"
	colSeq       = "_cdc_seq"
	colUnchanged = "_cdc_unchanged"
)

// ScanTable reads a whole Iceberg table with iceberg-go's scan, the reader
// other engines' code paths resemble most. ok is false when the table
// does not exist.
func ScanTable(ctx context.Context, cat *catalog.Catalog, ident table.Identifier) (recs []arrow.RecordBatch, props map[string]string, err error) {
	tbl, err := cat.Iceberg().LoadTable(ctx, ident)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", strings.Join(ident, "."), err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", strings.Join(ident, "."), err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 1<<16)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	return recs, tbl.Properties(), tr.Err()
}

// change is one changelog row.
type change struct {
	op        string
	lsn, seq  int64
	row       map[string]*string // by source column name
	key       string
	unchanged map[string]bool
}

// Resolve is the reference resolver: it applies a changelog's changes in
// (_cdc_lsn, _cdc_seq) order: c, u and r set the row of their key (a
// column named in _cdc_unchanged keeps the value it had; when the key is
// new because the change moved a row, the value of the row the change
// before it deleted), d removes it, t empties the table. A table without
// a key is a multiset: a d removes one row equal to its values (one that
// removes none is reported, unless a t follows). It also reports
// every (_cdc_lsn, _cdc_seq) that appears more than once.
//
// defaults is the changelog's cdclake.column-defaults: a column added
// with a default PostgreSQL gave to the rows it already had (without
// sending them) reads that default in every change before the position
// recorded with it.
func Resolve(recs []arrow.RecordBatch, cols []Column, names map[string]string, defaults string) (Rows, []string, error) {
	var defs map[string]struct {
		Value    json.RawMessage `json:"value"`
		LSN, Seq int64
	}
	if defaults != "" {
		if err := json.Unmarshal([]byte(defaults), &defs); err != nil {
			return nil, nil, fmt.Errorf("read cdclake.column-defaults: %w", err)
		}
	}
	var changes []change
	for _, rec := range recs {
		idx := map[string]int{}
		for i, f := range rec.Schema().Fields() {
			idx[f.Name] = i
		}
		type def struct {
			val      *string
			lsn, seq int64
		}
		recDefs := map[string]def{} // by source column name
		for _, c := range cols {
			d, ok := defs[lakeName(names, c.Name)]
			j, has := idx[lakeName(names, c.Name)]
			if !ok || !has {
				continue
			}
			arr, _, err := array.FromJSON(memory.DefaultAllocator, rec.Schema().Field(j).Type, strings.NewReader("["+string(d.Value)+"]"))
			if err != nil {
				return nil, nil, fmt.Errorf("default of %s: %w", c.Name, err)
			}
			recDefs[c.Name] = def{Value(arr, 0), d.LSN, d.Seq}
			arr.Release()
		}
		for _, m := range []string{colOp, colLSN, colSeq, colUnchanged} {
			if _, ok := idx[m]; !ok {
				return nil, nil, fmt.Errorf("changelog has no column %s", m)
			}
		}
		for r := range int(rec.NumRows()) {
			ch := change{op: format(rec.Column(idx[colOp]), r), row: map[string]*string{}, unchanged: map[string]bool{},
				lsn: rec.Column(idx[colLSN]).(*array.Int64).Value(r), seq: rec.Column(idx[colSeq]).(*array.Int64).Value(r)}
			var key []string
			for _, c := range cols {
				j, ok := idx[lakeName(names, c.Name)]
				if !ok {
					continue
				}
				ch.row[c.Name] = Value(rec.Column(j), r)
				if d, ok := recDefs[c.Name]; ok && (ch.lsn < d.lsn || ch.lsn == d.lsn && ch.seq < d.seq) {
					ch.row[c.Name] = d.val
				}
				if c.Key {
					key = append(key, str(ch.row[c.Name]))
				}
			}
			ch.key = strings.Join(key, "|")
			if u := rec.Column(idx[colUnchanged]); !u.IsNull(r) {
				l := u.(array.ListLike)
				from, to := l.ValueOffsets(r)
				for j := int(from); j < int(to); j++ {
					ch.unchanged[format(l.ListValues(), j)] = true
				}
			}
			changes = append(changes, ch)
		}
	}
	sort.SliceStable(changes, func(i, j int) bool {
		if changes[i].lsn != changes[j].lsn {
			return changes[i].lsn < changes[j].lsn
		}
		return changes[i].seq < changes[j].seq
	})
	var dups []string
	k := newKeyer(cols)
	state := Rows{}                              // a keyed table's rows by key
	bag := map[string][]map[string]*string{}     // a keyless table's rows by their values
	deleted := map[[2]int64]map[string]*string{} // position of a d -> the row it removed
	var unmatched []string                       // keyless: deletes of rows not there
	for i, ch := range changes {
		if i > 0 && ch.lsn == changes[i-1].lsn && ch.seq == changes[i-1].seq {
			if len(dups) < 10 {
				dups = append(dups, fmt.Sprintf("(_cdc_lsn, _cdc_seq) = (%d, %d) appears twice (ops %s, %s)", ch.lsn, ch.seq, changes[i-1].op, ch.op))
			}
			continue
		}
		pos := [2]int64{ch.lsn, ch.seq}
		switch ch.op {
		case "t":
			state, bag = Rows{}, map[string][]map[string]*string{}
			unmatched = nil // a reload after a rewrite: the rows before it were stale
		case "d":
			if k.keyed {
				deleted[pos] = state[ch.key]
				delete(state, ch.key)
				break
			}
			t := k.text(ch.row)
			if n := len(bag[t]); n > 0 {
				deleted[pos] = bag[t][n-1]
				bag[t] = bag[t][:n-1]
			} else {
				unmatched = append(unmatched, fmt.Sprintf("the d at (%d, %d) removes a row the table does not hold: %s", ch.lsn, ch.seq, clip(t)))
			}
		case "c", "u", "r":
			var prev map[string]*string
			if k.keyed {
				prev = state[ch.key]
			}
			if prev == nil {
				prev = deleted[[2]int64{ch.lsn, ch.seq - 1}]
			}
			row := map[string]*string{}
			for _, c := range cols {
				if ch.unchanged[c.Name] || ch.unchanged[lakeName(names, c.Name)] {
					if prev != nil {
						row[c.Name] = prev[c.Name]
					} else {
						row[c.Name] = nil
					}
					continue
				}
				if v, ok := ch.row[c.Name]; ok {
					row[c.Name] = v
				}
			}
			if k.keyed {
				state[ch.key] = row
			} else {
				bag[k.text(row)] = append(bag[k.text(row)], row)
			}
		default:
			return nil, nil, fmt.Errorf("unknown _cdc_op %q at (%d, %d)", ch.op, ch.lsn, ch.seq)
		}
	}
	if len(unmatched) > 10 {
		unmatched = unmatched[:10]
	}
	dups = append(dups, unmatched...)
	for _, rows := range bag {
		for _, row := range rows {
			key, _ := k.key(row)
			state[key] = row
		}
	}
	return state, dups, nil
}
