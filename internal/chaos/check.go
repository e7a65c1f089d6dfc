package chaos

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// Row is one changelog row of a workload table.
type Row struct {
	Op             string
	LSN, Seq, Xid  int64
	ID, Ver        int64
	IDNull         bool
	VerNull        bool
	Pad            string
	PadNull        bool
	Unchanged      []string
	Table          string
	positionRepeat bool // the same (lsn, seq) as the row before it
}

// ReadChangelog scans the changelog of source table public.name and
// returns its rows ordered by (_cdc_lsn, _cdc_seq).
func ReadChangelog(ctx context.Context, cat *catalog.Catalog, source, name string) ([]Row, error) {
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(source, "public", name))
	if err != nil {
		return nil, fmt.Errorf("load changelog of %s: %w", name, err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan changelog of %s: %w", name, err)
	}
	defer at.Release()
	var out []Row
	tr := array.NewTableReader(at, 1<<14)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(c string) (arrow.Array, error) {
			idx := rec.Schema().FieldIndices(c)
			if len(idx) == 0 {
				return nil, fmt.Errorf("changelog of %s has no column %s", name, c)
			}
			return rec.Column(idx[0]), nil
		}
		var cols [8]arrow.Array
		for i, c := range []string{lakeformat.ColOp, lakeformat.ColLSN, lakeformat.ColSeq, lakeformat.ColXID, "id", "ver", "pad", lakeformat.ColUnchanged} {
			if cols[i], err = col(c); err != nil {
				return nil, err
			}
		}
		ops, lsns, seqs, xids := cols[0].(*array.String), cols[1].(*array.Int64), cols[2].(*array.Int64), cols[3].(*array.Int64)
		ids, vers, pads, unch := cols[4].(*array.Int64), cols[5].(*array.Int64), cols[6].(*array.String), cols[7].(*array.List)
		for i := range int(rec.NumRows()) {
			r := Row{Table: name, Op: ops.Value(i), LSN: lsns.Value(i), Seq: seqs.Value(i), Xid: xids.Value(i),
				IDNull: ids.IsNull(i), VerNull: vers.IsNull(i), PadNull: pads.IsNull(i)}
			if !r.IDNull {
				r.ID = ids.Value(i)
			}
			if !r.VerNull {
				r.Ver = vers.Value(i)
			}
			if !r.PadNull {
				r.Pad = pads.Value(i)
			}
			if unch.IsValid(i) {
				from, to := unch.ValueOffsets(i)
				vals := unch.ListValues().(*array.String)
				for j := from; j < to; j++ {
					r.Unchanged = append(r.Unchanged, vals.Value(int(j)))
				}
			}
			out = append(out, r)
		}
	}
	if err := tr.Err(); err != nil {
		return nil, fmt.Errorf("read changelog of %s: %w", name, err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].LSN != out[j].LSN {
			return out[i].LSN < out[j].LSN
		}
		return out[i].Seq < out[j].Seq
	})
	for i := 1; i < len(out); i++ {
		out[i].positionRepeat = out[i].LSN == out[i-1].LSN && out[i].Seq == out[i-1].Seq
	}
	return out, nil
}

// SourceRow is a row of a workload table as the source holds it.
type SourceRow struct {
	Ver int64
	Pad string
}

// ReadSource returns the rows of public.name by id.
func ReadSource(ctx context.Context, conn *pgx.Conn, name string) (map[int64]SourceRow, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id, ver, pad FROM %s", name))
	if err != nil {
		return nil, fmt.Errorf("read source %s: %w", name, err)
	}
	defer rows.Close()
	out := map[int64]SourceRow{}
	for rows.Next() {
		var id int64
		var r SourceRow
		if err := rows.Scan(&id, &r.Ver, &r.Pad); err != nil {
			return nil, fmt.Errorf("read source %s: %w", name, err)
		}
		out[id] = r
	}
	return out, rows.Err()
}

// Report is what Check found. A run is good when Problems is empty.
type Report struct {
	Tables         int
	SourceRows     int // rows in the source tables, each compared
	ChangelogRows  int // rows in the changelogs, repeats included
	Txns           int // committed transactions compared
	Changes        int // changes of those transactions compared
	RowsLost       int // source rows missing from the resolved lake
	RowsWrong      int // source rows the resolved lake holds with other values
	RowsExtra      int // rows the resolved lake holds that the source has not
	ChangesMissing int // committed changes absent from the changelog
	Duplicates     int // changes present more than once after dedup by position, plus snapshot rows read twice
	RepeatedRows   int // rows sharing (_cdc_lsn, _cdc_seq) with another: exactly once allows none
	Phantoms       int // changes of no committed transaction (rolled back ones included)
	OrderErrors    int // a transaction under several LSNs, or LSNs not rising with commit order
	Problems       []string
	problemsCut    int
}

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) >= 30 {
		r.problemsCut++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Err returns the problems as one error, or nil.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	msg := strings.Join(r.Problems, "\n  ")
	if r.problemsCut > 0 {
		msg += fmt.Sprintf("\n  ... and %d more", r.problemsCut)
	}
	return fmt.Errorf("lake does not match the source:\n  %s", msg)
}

// Lost is the final count of lost rows: source rows missing or wrong,
// and committed changes missing from the changelog.
func (r *Report) Lost() int { return r.RowsLost + r.RowsWrong + r.ChangesMissing }

// Check compares the changelogs of source's tables with the source and
// with the workload's log of committed transactions:
//
//   - resolved by key (latest change wins, a delete removes the row, a
//     truncate clears the table; a column named in _cdc_unchanged keeps
//     its previous value), each changelog equals its source table row for
//     row;
//   - after dedup by (_cdc_lsn, _cdc_seq), every change of every
//     committed transaction is there exactly once, under the
//     transaction's xid and one LSN, in order for each key; nothing else
//     is (no change of a rolled-back transaction);
//   - LSNs rise with each worker's commit order; no snapshot reads a key
//     twice.
func Check(ctx context.Context, cat *catalog.Catalog, conn *pgx.Conn, source string, tables []string, txns []Txn) (Report, error) {
	return check(ctx, cat, conn, source, tables, txns, true)
}

// CheckState is Check without the workload's log: it only compares the
// resolved changelogs with the source tables.
func CheckState(ctx context.Context, cat *catalog.Catalog, conn *pgx.Conn, source string, tables []string) (Report, error) {
	return check(ctx, cat, conn, source, tables, nil, false)
}

func check(ctx context.Context, cat *catalog.Catalog, conn *pgx.Conn, source string, tables []string, txns []Txn, history bool) (Report, error) {
	r := Report{Tables: len(tables)}
	byXid := map[int64][]Row{}
	for _, name := range tables {
		rows, err := ReadChangelog(ctx, cat, source, name)
		if err != nil {
			return r, err
		}
		src, err := ReadSource(ctx, conn, name)
		if err != nil {
			return r, err
		}
		r.ChangelogRows += len(rows)
		r.compareState(name, rows, src)
		for _, row := range rows {
			if row.positionRepeat {
				continue
			}
			if row.Op == lakeformat.OpInsert || row.Op == lakeformat.OpUpdate || row.Op == lakeformat.OpDelete {
				byXid[row.Xid] = append(byXid[row.Xid], row)
			}
		}
	}
	if history {
		r.compareHistory(byXid, txns)
	}
	return r, nil
}

// compareState resolves a changelog and compares it with the source.
func (r *Report) compareState(name string, rows []Row, src map[int64]SourceRow) {
	state := map[int64]SourceRow{}
	snapKeys := map[int64]int64{} // key -> LSN of the snapshot that read it
	for _, row := range rows {
		if row.positionRepeat {
			r.RepeatedRows++
			r.problem("%s: row %s id %d at (lsn %d, seq %d) is in the changelog more than once", name, row.Op, row.ID, row.LSN, row.Seq)
			continue
		}
		switch row.Op {
		case lakeformat.OpTruncate:
			state = map[int64]SourceRow{}
			continue
		case lakeformat.OpDelete:
			delete(state, row.ID)
			continue
		case lakeformat.OpRead:
			if l, ok := snapKeys[row.ID]; ok && l == row.LSN {
				r.Duplicates++
				r.problem("%s: the snapshot at lsn %d read id %d twice", name, row.LSN, row.ID)
			}
			snapKeys[row.ID] = row.LSN
		}
		nu := SourceRow{Ver: row.Ver, Pad: row.Pad}
		old, had := state[row.ID]
		for _, c := range row.Unchanged {
			switch {
			case !had:
				r.problem("%s: id %d at lsn %d leaves %s unchanged but has no earlier row", name, row.ID, row.LSN, c)
			case c == "ver":
				nu.Ver = old.Ver
			case c == "pad":
				nu.Pad = old.Pad
			}
		}
		state[row.ID] = nu
	}
	r.SourceRows += len(src)
	for id, want := range src {
		got, ok := state[id]
		switch {
		case !ok:
			r.RowsLost++
			r.problem("%s: id %d (version %d) is in the source but not in the lake", name, id, want.Ver)
		case got != want:
			r.RowsWrong++
			r.problem("%s: id %d is version %d in the lake, %d in the source (pads equal: %v)", name, id, got.Ver, want.Ver, got.Pad == want.Pad)
		}
	}
	for id, got := range state {
		if _, ok := src[id]; !ok {
			r.RowsExtra++
			r.problem("%s: id %d (version %d) is in the lake but not in the source", name, id, got.Ver)
		}
	}
}

// compareHistory checks the changes of every committed transaction.
func (r *Report) compareHistory(byXid map[int64][]Row, txns []Txn) {
	type key struct {
		table string
		id    int64
	}
	committed := map[int64]bool{}
	lastLSN := map[int]int64{} // per worker
	sorted := slices.Clone(txns)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Worker != sorted[j].Worker {
			return sorted[i].Worker < sorted[j].Worker
		}
		return sorted[i].N < sorted[j].N
	})
	for _, txn := range sorted {
		xid := txn.Xid32()
		committed[xid] = true
		rows := byXid[xid]
		sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
		r.Txns++
		r.Changes += len(txn.Changes)
		if len(txn.Changes) == 0 {
			continue
		}
		if len(rows) == 0 {
			r.ChangesMissing += len(txn.Changes)
			r.problem("transaction %d (worker %d #%d, %d changes) is missing from the changelog", xid, txn.Worker, txn.N, len(txn.Changes))
			continue
		}
		lsn := rows[0].LSN
		for _, row := range rows[1:] {
			if row.LSN != lsn {
				r.OrderErrors++
				r.problem("transaction %d is in the changelog under LSNs %d and %d", xid, lsn, row.LSN)
				break
			}
		}
		if prev, ok := lastLSN[txn.Worker]; ok && lsn <= prev {
			r.OrderErrors++
			r.problem("transaction %d (worker %d #%d) has LSN %d, not after the worker's previous commit at %d", xid, txn.Worker, txn.N, lsn, prev)
		}
		lastLSN[txn.Worker] = lsn
		want, got := map[key][]Change{}, map[key][]Change{}
		for _, c := range txn.Changes {
			k := key{c.Table, c.ID}
			want[k] = append(want[k], c)
		}
		for _, row := range rows {
			c := Change{Table: row.Table, Op: row.Op, ID: row.ID}
			if row.Op != lakeformat.OpDelete {
				c.Ver = row.Ver
			}
			k := key{c.Table, c.ID}
			got[k] = append(got[k], c)
		}
		for k, w := range want {
			g := got[k]
			switch {
			case slices.Equal(g, w):
			case len(g) < len(w):
				r.ChangesMissing += len(w) - len(g)
				r.problem("transaction %d: %s id %d changes %v in the changelog, want %v", xid, k.table, k.id, g, w)
			case len(g) > len(w) && isRepeat(g, w):
				r.Duplicates += len(g) - len(w)
				r.problem("transaction %d: %s id %d changes %v in the changelog, want %v once", xid, k.table, k.id, g, w)
			default:
				r.ChangesMissing += len(w)
				r.problem("transaction %d: %s id %d changes %v in the changelog, want %v", xid, k.table, k.id, g, w)
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				r.Phantoms += len(g)
				r.problem("transaction %d: %s id %d changes %v in the changelog, the transaction made none", xid, k.table, k.id, g)
			}
		}
	}
	for xid, rows := range byXid {
		if !committed[xid] {
			r.Phantoms += len(rows)
			r.problem("%d changes of transaction %d, which the workload did not commit (first: %s %s id %d)", len(rows), xid, rows[0].Table, rows[0].Op, rows[0].ID)
		}
	}
}

// isRepeat reports whether g is w repeated whole.
func isRepeat(g, w []Change) bool {
	if len(w) == 0 || len(g)%len(w) != 0 {
		return false
	}
	for i := range g {
		if g[i] != w[i%len(w)] {
			return false
		}
	}
	return true
}
