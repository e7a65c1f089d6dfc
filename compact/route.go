package compact

import "sort"

// The snapshot table keeps its rows sorted by primary key, each data file
// holding one key range, the ranges not overlapping. A compaction routes
// every changed key to a slot: the files whose range (of the first key
// column) holds it, or, for a key no file holds, the file just before it
// (or the first file). A slot's files are rewritten together as one
// sorted run that stays inside the gap between its neighbours, so the
// ranges never start to overlap and untouched files are never read.

// slot is a set of files rewritten as one sorted run with the keys
// routed to it.
type slot struct {
	files []int // indexes into the files given to route
	keys  []int // indexes into the keys given to route
}

// route assigns each key (the key encoding of a first key column value)
// to a slot. links pairs keys whose slots must be read together (an
// update that moved a row to a new key and did not resend every column
// needs the old row's values); groups lists such slots by index.
func route(files []DataFile, keys []string, links [][2]int) (slots []slot, groups [][]int) {
	n := len(files)
	order := make([]int, n)
	lo, hi := make([]string, n), make([]string, n)
	unbounded := false
	for i, f := range files {
		order[i], lo[i], hi[i] = i, string(f.Lo), string(f.Hi)
		if f.Lo == nil || f.Hi == nil {
			unbounded = true
		}
	}
	sort.Slice(order, func(a, b int) bool { return lo[order[a]] < lo[order[b]] })
	loAt := func(p int) string { return lo[order[p]] }
	hiAt := func(p int) string { return hi[order[p]] }
	// maxHi[p]: position of the greatest Hi among positions 0..p
	maxHi := make([]int, n)
	for p := range order {
		maxHi[p] = p
		if p > 0 && hiAt(maxHi[p-1]) > hiAt(p) {
			maxHi[p] = maxHi[p-1]
		}
	}

	fileSet := newUnionFind(n + 1) // node n: a new slot when there are no files
	touched := make([]bool, n+1)
	owner := make([]int, len(keys)) // a file (or n) per key
	if unbounded {                  // no usable ranges: one slot of every file
		for i := 1; i < n; i++ {
			fileSet.union(0, i)
		}
	}
	for k, key := range keys {
		switch {
		case n == 0:
			owner[k] = n
		case unbounded:
			owner[k] = 0
		default:
			// last position whose Lo <= key
			j := sort.Search(n, func(p int) bool { return loAt(p) > key }) - 1
			owner[k] = -1
			for p := j; p >= 0 && hiAt(maxHi[p]) >= key; p-- {
				if hiAt(p) >= key {
					if owner[k] < 0 {
						owner[k] = order[p]
					} else {
						fileSet.union(owner[k], order[p])
					}
				}
			}
			if owner[k] < 0 {
				if j >= 0 {
					owner[k] = order[maxHi[j]] // the file just before the key
				} else {
					owner[k] = order[0] // before every file
				}
			}
		}
		touched[owner[k]] = true
	}

	slotOf := map[int]int{} // union-find root -> slot index
	fileSlot := make([]int, n+1)
	for i := 0; i <= n; i++ {
		if !touched[i] {
			continue
		}
		r := fileSet.find(i)
		s, ok := slotOf[r]
		if !ok {
			s = len(slots)
			slotOf[r] = s
			slots = append(slots, slot{})
		}
		fileSlot[i] = s
		if i < n {
			slots[s].files = append(slots[s].files, i)
		}
	}
	for i := range n { // files merged into a touched slot without being owners
		if !touched[i] {
			if s, ok := slotOf[fileSet.find(i)]; ok {
				slots[s].files = append(slots[s].files, i)
			}
		}
	}
	for k := range keys {
		s := fileSlot[owner[k]]
		slots[s].keys = append(slots[s].keys, k)
	}

	slotSet := newUnionFind(len(slots))
	for _, l := range links {
		slotSet.union(fileSlot[owner[l[0]]], fileSlot[owner[l[1]]])
	}
	groupOf := map[int]int{}
	for s := range slots {
		r := slotSet.find(s)
		g, ok := groupOf[r]
		if !ok {
			g = len(groups)
			groupOf[r] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], s)
	}
	for s := range slots {
		sort.Ints(slots[s].files)
	}
	return slots, groups
}

// routeAll adds a slot of its own for every one of n files that no slot
// holds, so that every file is rewritten.
func routeAll(slots []slot, groups [][]int, n int) ([]slot, [][]int) {
	held := make([]bool, n)
	for _, s := range slots {
		for _, f := range s.files {
			held[f] = true
		}
	}
	for f := range n {
		if !held[f] {
			slots = append(slots, slot{files: []int{f}})
			groups = append(groups, []int{len(slots) - 1})
		}
	}
	return slots, groups
}

type unionFind []int

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = i
	}
	return u
}

func (u unionFind) find(i int) int {
	for u[i] != i {
		u[i] = u[u[i]]
		i = u[i]
	}
	return i
}

func (u unionFind) union(a, b int) {
	if ra, rb := u.find(a), u.find(b); ra != rb {
		u[rb] = ra
	}
}
