package chaos

import (
	"slices"
	"sort"
	"testing"

	"github.com/cdclake/cdclake/lakeformat"
)

// TestChaosCheckFindsFaults feeds the checker a correct changelog and
// changelogs with each kind of damage, so that a clean report from the
// suite means something.
func TestChaosCheckFindsFaults(t *testing.T) {
	txns := []Txn{
		{Worker: 0, N: 0, Xid: 1<<32 | 100, Changes: []Change{{"t", "c", 5, 1}, {"t", "u", 1, 2}}},
		{Worker: 1, N: 0, Xid: 1<<32 | 101, Changes: []Change{{"t", "d", 2, 0}, {"t", "d", 3, 0}, {"t", "u", 9, 2}}}, // 3 moves to 9
		{Worker: 0, N: 1, Xid: 1<<32 | 102, Changes: []Change{{"t", "u", 5, 2}, {"t", "u", 5, 3}}},
	}
	snapshot := []Row{
		{Op: "r", LSN: 99, Seq: 1, ID: 1, Ver: 1, Pad: "p1-1"},
		{Op: "r", LSN: 99, Seq: 2, ID: 2, Ver: 1, Pad: "p2-1"},
		{Op: "r", LSN: 99, Seq: 3, ID: 3, Ver: 1, Pad: "p3-1"},
		{Op: "r", LSN: 99, Seq: 4, ID: 4, Ver: 1, Pad: "p4-1"},
	}
	changes := []Row{
		{Op: "c", LSN: 200, Seq: 0, Xid: 100, ID: 5, Ver: 1, Pad: "p5-1"},
		{Op: "u", LSN: 200, Seq: 1, Xid: 100, ID: 1, Ver: 2, Pad: "p1-2"},
		{Op: "d", LSN: 300, Seq: 0, Xid: 101, ID: 2, VerNull: true, PadNull: true, Unchanged: []string{"ver", "pad"}},
		{Op: "d", LSN: 300, Seq: 1, Xid: 101, ID: 3, VerNull: true, PadNull: true, Unchanged: []string{"ver", "pad"}},
		{Op: "u", LSN: 300, Seq: 2, Xid: 101, ID: 9, Ver: 2, Pad: "p9-2"},
		{Op: "u", LSN: 400, Seq: 0, Xid: 102, ID: 5, Ver: 2, Pad: "p5-2"},
		{Op: "u", LSN: 400, Seq: 1, Xid: 102, ID: 5, Ver: 3, PadNull: true, Unchanged: []string{"pad"}}, // unchanged TOAST
	}
	source := map[int64]SourceRow{1: {2, "p1-2"}, 4: {1, "p4-1"}, 5: {3, "p5-2"}, 9: {2, "p9-2"}}

	check := func(rows []Row) Report {
		rows = slices.Clone(rows)
		for i := range rows {
			rows[i].Table = "t"
		}
		sort.SliceStable(rows, func(i, j int) bool {
			if rows[i].LSN != rows[j].LSN {
				return rows[i].LSN < rows[j].LSN
			}
			return rows[i].Seq < rows[j].Seq
		})
		for i := 1; i < len(rows); i++ {
			rows[i].positionRepeat = rows[i].LSN == rows[i-1].LSN && rows[i].Seq == rows[i-1].Seq
		}
		var r Report
		r.compareState("t", rows, source)
		byXid := map[int64][]Row{}
		for _, row := range rows {
			if !row.positionRepeat && row.Op != lakeformat.OpRead && row.Op != lakeformat.OpTruncate {
				byXid[row.Xid] = append(byXid[row.Xid], row)
			}
		}
		r.compareHistory(byXid, txns)
		return r
	}
	good := append(slices.Clone(snapshot), changes...)
	if r := check(good); r.Err() != nil {
		t.Fatalf("a correct changelog: %v", r.Err())
	}
	without := func(i int) []Row {
		return append(slices.Clone(snapshot), slices.Delete(slices.Clone(changes), i, i+1)...)
	}
	with := func(extra ...Row) []Row { return append(slices.Clone(good), extra...) }
	cases := []struct {
		name  string
		rows  []Row
		count func(Report) int
	}{
		{"a change lost", without(1), func(r Report) int { return r.ChangesMissing }},
		{"a lost change shows in the state", without(1), func(r Report) int { return r.RowsWrong }},
		{"a transaction lost", append(slices.Clone(snapshot), changes[2:]...), func(r Report) int { return r.ChangesMissing }},
		{"a delete lost", without(2), func(r Report) int { return r.RowsExtra }},
		{"a snapshot row lost", slices.Delete(slices.Clone(good), 3, 4), func(r Report) int { return r.RowsLost }},
		{"a change twice at one position", with(changes[1]), func(r Report) int { return r.RepeatedRows }},
		{"a transaction written twice", with(Row{Op: "c", LSN: 200, Seq: 2, Xid: 100, ID: 5, Ver: 1, Pad: "p5-1"},
			Row{Op: "u", LSN: 200, Seq: 3, Xid: 100, ID: 1, Ver: 2, Pad: "p1-2"}), func(r Report) int { return r.Duplicates }},
		{"a snapshot row twice", with(Row{Op: "r", LSN: 99, Seq: 9, ID: 2, Ver: 1, Pad: "p2-1"}), func(r Report) int { return r.Duplicates }},
		{"a rolled-back change", with(Row{Op: "c", LSN: 250, Seq: 0, Xid: 555, ID: 7, Ver: 1}), func(r Report) int { return r.Phantoms }},
		{"a transaction under two LSNs", append(append(slices.Clone(snapshot), changes[:6]...),
			Row{Op: "u", LSN: 401, Seq: 1, Xid: 102, ID: 5, Ver: 3, PadNull: true, Unchanged: []string{"pad"}}), func(r Report) int { return r.OrderErrors }},
		{"commit order inverted", append(append(slices.Clone(snapshot), changes[2:5]...),
			Row{Op: "c", LSN: 500, Seq: 0, Xid: 100, ID: 5, Ver: 1, Pad: "p5-1"}, Row{Op: "u", LSN: 500, Seq: 1, Xid: 100, ID: 1, Ver: 2, Pad: "p1-2"},
			changes[5], changes[6]), func(r Report) int { return r.OrderErrors }},
		{"an old version", append(slices.Clone(good[:len(good)-1]), Row{Op: "u", LSN: 400, Seq: 1, Xid: 102, ID: 5, Ver: 2, Pad: "p5-2"}),
			func(r Report) int { return r.ChangesMissing + r.RowsWrong }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := check(tc.rows)
			if tc.count(r) == 0 || r.Err() == nil {
				t.Errorf("not detected: %+v", r)
			}
		})
	}
}
