package compact

import (
	"fmt"
	"testing"
)

// k encodes an int key as a first key column.
func k(v int64) []byte { return appendInt([]byte{1}, v) }

func f(path string, lo, hi int64) DataFile { return DataFile{Path: path, Lo: k(lo), Hi: k(hi)} }

func TestRoute(t *testing.T) {
	files := []DataFile{f("c", 200, 299), f("a", 0, 99), f("b", 100, 199)} // not in key order
	cases := []struct {
		name  string
		files []DataFile
		keys  []int64
		links [][2]int
		// want: per slot, "files:keys"
		want string
	}{
		{"no files: one new slot", nil, []int64{5, 1}, nil, "[[]:[0 1]]"},
		{"keys inside ranges", files, []int64{5, 150, 160}, nil, "[[1]:[0] [2]:[1 2]]"},
		{"untouched files are not in any slot", files, []int64{250}, nil, "[[0]:[0]]"},
		{"a key past the last range goes to the last file", files, []int64{1000}, nil, "[[0]:[0]]"},
		{"a key before every range goes to the first file", files, []int64{-5}, nil, "[[1]:[0]]"},
		{"a key in a gap goes to the file before it",
			[]DataFile{f("a", 0, 10), f("b", 20, 30)}, []int64{15}, nil, "[[0]:[0]]"},
		{"files sharing a boundary value are one slot",
			[]DataFile{f("a", 0, 10), f("b", 10, 20), f("c", 30, 40)}, []int64{10, 35}, nil, "[[0 1]:[0] [2]:[1]]"},
		{"a key in two overlapping files joins them",
			[]DataFile{f("a", 0, 50), f("b", 20, 30), f("c", 40, 60)}, []int64{45}, nil, "[[0 2]:[0]]"},
		{"a wide file before others is found", []DataFile{f("a", 0, 100), f("b", 10, 20), f("c", 30, 40)},
			[]int64{50}, nil, "[[0]:[0]]"},
		{"unbounded files make one slot", []DataFile{{Path: "x"}, f("a", 0, 10)}, []int64{5}, nil, "[[0 1]:[0]]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := make([]string, len(tc.keys))
			for i, v := range tc.keys {
				keys[i] = string(k(v))
			}
			slots, groups := route(tc.files, keys, tc.links)
			var got []string
			for _, s := range slots {
				got = append(got, fmt.Sprintf("%v:%v", s.files, s.keys))
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("slots %v, want %s", got, tc.want)
			}
			if len(groups) != len(slots) {
				t.Errorf("%d groups for %d slots without links", len(groups), len(slots))
			}
		})
	}
}

func TestRouteLinksGroupSlots(t *testing.T) {
	files := []DataFile{f("a", 0, 99), f("b", 100, 199), f("c", 200, 299)}
	keys := []string{string(k(5)), string(k(150)), string(k(250))}
	slots, groups := route(files, keys, [][2]int{{0, 2}})
	if len(slots) != 3 {
		t.Fatalf("%d slots, want 3", len(slots))
	}
	if fmt.Sprint(groups) != "[[0 2] [1]]" {
		t.Errorf("groups %v, want the slots of keys 0 and 2 together", groups)
	}
}
