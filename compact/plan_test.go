package compact

import (
	"fmt"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := now.Unix() / 3600 // the newest hour
	ref := TableRef{"shop", "public", "orders"}
	changelog := func(lsn uint64, files ...ChangeFile) ChangelogState {
		return ChangelogState{SnapshotID: 7, LSN: lsn, Keys: []string{"id"}, Columns: []string{"id", "note"}, Files: files,
			Snapshots: []SnapshotInfo{{ID: 7, Time: now}}}
	}
	file := func(path string, hour, minLSN, maxLSN, bytes int64) ChangeFile {
		return ChangeFile{Path: path, Hour: hour, Rows: 10, Bytes: bytes, MinLSN: minLSN, MaxLSN: maxLSN}
	}
	snapshot := func(lsn uint64, cols ...string) SnapshotState {
		return SnapshotState{Exists: true, SnapshotID: 3, LSN: lsn, Columns: cols,
			Snapshots: []SnapshotInfo{{ID: 3, Time: now.Add(-time.Minute), LSN: lsn}}}
	}
	cases := []struct {
		name string
		st   State
		want string // fmt of selected plan fields
	}{
		{"first compaction creates the table",
			State{Changelog: changelog(100, file("f1", h, 10, 90, 1))},
			"compact=true create=true from=0 to=100 files=[f1] skip="},
		{"no primary key",
			State{Changelog: ChangelogState{SnapshotID: 7, LSN: 100}},
			"compact=false create=false from=0 to=100 files=[] skip=the changelog has no primary key (cdclake.primary-key)"},
		{"empty changelog",
			State{Changelog: ChangelogState{Keys: []string{"id"}}},
			"compact=false create=false from=0 to=0 files=[] skip=the changelog is empty"},
		{"up to date",
			State{Changelog: changelog(100, file("f1", h, 10, 90, 1)), Snapshot: snapshot(100, "id", "note")},
			"compact=false create=false from=100 to=100 files=[] skip="},
		{"only files with changes after the watermark",
			State{Changelog: changelog(300, file("old", h-2, 10, 90, 1), file("edge", h-1, 90, 100, 1),
				file("new", h, 150, 290, 1), file("nostats", h, 1, 0, 1)), Snapshot: snapshot(100, "id", "note")},
			"compact=true create=false from=100 to=300 files=[edge new nostats] skip="},
		{"snapshot ahead of the changelog",
			State{Changelog: changelog(50), Snapshot: snapshot(100, "id", "note")},
			"compact=false create=false from=100 to=50 files=[] skip=the snapshot table is ahead of its changelog"},

		// a reload consistent with 200 writes its rows at 199, later
		{"a running reload holds the watermark at its rows' position",
			State{Changelog: changelog(300, file("old", h-1, 10, 90, 1), file("new", h, 150, 290, 1)),
				Snapshot: snapshot(100, "id", "note"), Copy: CopyState{LSN: 200, Running: true}},
			"compact=true create=false from=100 to=199 files=[new] skip= hold=200"},
		{"a running reload holds the first compaction too",
			State{Changelog: changelog(300, file("f1", h, 10, 290, 1)), Copy: CopyState{LSN: 200, Running: true}},
			"compact=true create=true from=0 to=199 files=[f1] skip= hold=200"},
		{"held at the reload's position: nothing to do",
			State{Changelog: changelog(300, file("new", h, 150, 290, 1)),
				Snapshot: snapshot(199, "id", "note"), Copy: CopyState{LSN: 200, Running: true}},
			"compact=false create=false from=199 to=199 files=[] skip= hold=200"},
		{"a running reload ahead of the changelog holds nothing",
			State{Changelog: changelog(150, file("new", h, 110, 140, 1)),
				Snapshot: snapshot(100, "id", "note"), Copy: CopyState{LSN: 200, Running: true}},
			"compact=true create=false from=100 to=150 files=[new] skip= hold=0"},
		{"a watermark already past a running reload",
			State{Changelog: changelog(300, file("new", h, 150, 290, 1)),
				Snapshot: snapshot(250, "id", "note"), Copy: CopyState{LSN: 200, Running: true}},
			"compact=false create=false from=250 to=199 files=[] skip=the watermark 250 is past a copy in progress at 200: its rows will not be applied hold=200"},
		{"a finished reload is applied with the changes after it",
			State{Changelog: changelog(300, file("held", h, 150, 290, 1), file("reload", h, 199, 199, 1)),
				Snapshot: snapshot(199, "id", "note"), Copy: CopyState{LSN: 200}},
			"compact=true create=false from=199 to=300 files=[held reload] skip= hold=0"},
		{"a finished reload above the changelog's watermark (no change since) is applied",
			State{Changelog: changelog(150, file("old", h, 110, 140, 1), file("reload", h, 199, 199, 1)),
				Snapshot: snapshot(150, "id", "note"), Copy: CopyState{LSN: 200}},
			"compact=true create=false from=150 to=200 files=[reload] skip= hold=0"},
		{"and then the table is up to date",
			State{Changelog: changelog(150, file("old", h, 110, 140, 1), file("reload", h, 199, 199, 1)),
				Snapshot: snapshot(200, "id", "note"), Copy: CopyState{LSN: 200}},
			"compact=false create=false from=200 to=200 files=[] skip= hold=0"},
		{"a finished copy below the watermark changes nothing",
			State{Changelog: changelog(300, file("new", h, 150, 290, 1)),
				Snapshot: snapshot(100, "id", "note"), Copy: CopyState{LSN: 50}},
			"compact=true create=false from=100 to=300 files=[new] skip= hold=0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.st.Table, tc.st.Now = ref, now
			p := Options{}.Plan(tc.st)
			var files []string
			for _, f := range p.ChangeFiles {
				files = append(files, f.Path)
			}
			got := fmt.Sprintf("compact=%v create=%v from=%d to=%d files=%v skip=%s",
				p.Compact, p.Create, p.From, p.To, strOrEmpty(files), p.Skip)
			if tc.st.Copy.LSN != 0 {
				got += fmt.Sprintf(" hold=%d", p.Hold)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func strOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestPlanMerges(t *testing.T) {
	const mb = 1 << 20
	small := func(path string, hour int64) ChangeFile { return ChangeFile{Path: path, Hour: hour, Bytes: mb} }
	var open []ChangeFile
	for i := range 100 {
		open = append(open, small(fmt.Sprintf("o%03d", i), 12))
	}
	cases := []struct {
		name  string
		files []ChangeFile
		want  string
	}{
		{"closed hour with small files", []ChangeFile{small("a", 10), small("b", 10), small("c", 12)}, "[10:[a b]]"},
		{"one small file is left alone", []ChangeFile{small("a", 10), small("c", 12)}, "[]"},
		{"large files are left alone", []ChangeFile{small("a", 10), {Path: "big", Hour: 10, Bytes: 100 * mb}, small("b", 10), small("c", 12)}, "[10:[a b]]"},
		{"open hour below the threshold", open[:99], "[]"},
		{"open hour at the threshold", open, "[12:[100 files]]"},
		{"open hour leaves merged files for later", append([]ChangeFile{{Path: "m", Hour: 12, Bytes: 20 * mb}}, open...), "[12:[100 files]]"},
		{"closed hour takes merged files too", []ChangeFile{{Path: "m", Hour: 11, Bytes: 20 * mb}, small("a", 11), small("c", 12)}, "[11:[a m]]"},
		{"unknown partition", []ChangeFile{small("a", -1), small("b", -1)}, "[]"},
		{"a large hour is merged in groups of at most ChangelogFileSize", func() []ChangeFile {
			var fs []ChangeFile
			for _, p := range "abcdefghij" {
				fs = append(fs, ChangeFile{Path: string(p), Hour: 10, Bytes: 30 * mb})
			}
			return append(fs, small("z", 12))
		}(), "[10:[a b c d] 10:[e f g h] 10:[i j]]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range planMerges(tc.files, 64*mb, 100) {
				var paths []string
				for _, f := range m.Files {
					paths = append(paths, f.Path)
				}
				if len(paths) > 10 {
					paths = []string{fmt.Sprintf("%d files", len(paths))}
				}
				got = append(got, fmt.Sprintf("%d:%v", m.Hour, paths))
			}
			if fmt.Sprint(strOrEmpty(got)) != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestExpireBefore(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	snaps := func(ages ...time.Duration) []SnapshotInfo {
		var out []SnapshotInfo
		for i, a := range ages {
			out = append(out, SnapshotInfo{ID: int64(i + 1), Time: now.Add(-a)})
		}
		return out
	}
	cases := []struct {
		name    string
		snaps   []SnapshotInfo
		current int64
		maxKeep int
		want    time.Duration // age of the cutoff, -1: nothing expires
	}{
		{"all recent", snaps(time.Minute, 2*time.Minute), 1, 0, -1},
		{"old ones expire", snaps(time.Minute, 20*time.Minute, 30*time.Minute), 1, 0, 15 * time.Minute},
		{"the current snapshot never expires", snaps(time.Hour), 1, 0, -1},
		{"count cap", snaps(time.Second, 2*time.Second, 3*time.Second, 4*time.Second), 1, 2, 2 * time.Second},
		{"count cap not reached", snaps(time.Second, 2*time.Second), 1, 5, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := expireBefore(tc.snaps, tc.current, now.Add(-15*time.Minute), tc.maxKeep)
			if tc.want < 0 {
				if !got.IsZero() {
					t.Errorf("expire before %v, want nothing", got)
				}
				return
			}
			if want := now.Add(-tc.want); !got.Equal(want) {
				t.Errorf("expire before %v, want %v", got, want)
			}
		})
	}
}
