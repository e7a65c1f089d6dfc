package compact

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/cdclake/cdclake/lakeformat"
)

// State is what Plan knows about one source table: catalog metadata
// (table metadata and manifests) only, never row data. Load builds it.
type State struct {
	Table     TableRef
	Now       time.Time
	Changelog ChangelogState
	Snapshot  SnapshotState
	Copy      CopyState
}

// CopyState is the catalog's record of the table's latest copy of its
// existing rows (an initial snapshot or a reload, catalog.TableSnapshot).
// A copy consistent with position LSN lands in the changelog in one
// commit, all rows at _cdc_lsn = LSN-1 (a reload's after a 't' row at the
// same position), possibly long after the stream has committed changes
// at and past LSN.
type CopyState struct {
	LSN uint64 // 0: no record
	// Running: the copy is under way or was interrupted, so its rows may
	// still land. Else it is done and its commit is in the changelog
	// snapshot that Load read.
	Running bool
}

// ChangelogState describes a changelog table.
type ChangelogState struct {
	SnapshotID int64  // current snapshot, 0 when the table has none
	LSN        uint64 // its cdclake.source-lsn property
	Keys       []string
	Columns    []string // source columns, in schema order
	Files      []ChangeFile
	Snapshots  []SnapshotInfo
	// Defaults are the columns added with a constant default
	// (cdclake.column-defaults, see defaults.go).
	Defaults map[string]lakeformat.ColumnDefault
}

// ChangeFile is one data file of a changelog.
type ChangeFile struct {
	Path   string
	Hour   int64 // hour partition: hours since 1970, -1 when unknown
	Rows   int64
	Bytes  int64
	MinLSN int64 // _cdc_lsn bounds; MaxLSN < MinLSN when unknown
	MaxLSN int64
}

// SnapshotState describes a snapshot table.
type SnapshotState struct {
	Exists     bool
	SnapshotID int64
	LSN        uint64 // watermark W
	Columns    []string
	Files      []DataFile
	Snapshots  []SnapshotInfo
	// Defaults are the column defaults its rows have (defaults.go).
	Defaults map[string]lakeformat.ColumnDefault
}

// DataFile is one data file of a snapshot table with the range of its
// first key column (key encoding, see key.go; nil when unknown).
type DataFile struct {
	Path   string
	Rows   int64
	Bytes  int64
	Lo, Hi []byte
}

// SnapshotInfo is one Iceberg snapshot of a table.
type SnapshotInfo struct {
	ID   int64
	Time time.Time
	LSN  uint64 // cdclake.source-lsn of its summary, 0 when absent
}

// Plan is what one compaction of a table will do.
type Plan struct {
	Table TableRef
	// Skip says why the table is not compacted ("" when it is).
	Skip string

	// Compact: apply the changes with From <= _cdc_lsn < To to the
	// snapshot table (created first when Create).
	Compact             bool
	Create              bool
	From, To            uint64
	ChangelogSnapshotID int64
	SnapshotID          int64 // the snapshot table's base snapshot
	ChangeFiles         []ChangeFile
	ChangeRows          int64
	// FillDefaults are columns whose default (defaults.go) the snapshot
	// table's rows lack: every file is rewritten.
	FillDefaults []string
	// Hold is the position of a copy in progress (CopyState) that capped
	// To at Hold-1, so that its rows are still applied when they land; 0
	// when none did.
	Hold uint64

	// Merges of small changelog files, one per hour partition.
	Merges []Merge
	// ExpireChangelogBefore / ExpireSnapshotsBefore: snapshots older
	// than these expire (zero: nothing to expire).
	ExpireChangelogBefore time.Time
	ExpireSnapshotsBefore time.Time
}

// Merge rewrites the small files of one changelog hour as one or more
// larger ones.
type Merge struct {
	Hour  int64
	Files []ChangeFile
}

// Plan decides from metadata alone what compacting a table takes.
func (o Options) Plan(st State) Plan {
	o = o.withDefaults()
	p := Plan{Table: st.Table, From: st.Snapshot.LSN, To: st.Changelog.LSN,
		ChangelogSnapshotID: st.Changelog.SnapshotID, SnapshotID: st.Snapshot.SnapshotID}
	cp := st.Copy
	switch {
	case cp.LSN == 0:
	case cp.Running && cp.LSN-1 < p.To:
		// the copy's rows land at LSN-1 later; a watermark above that
		// would leave them out for good
		p.To, p.Hold = cp.LSN-1, cp.LSN
	case !cp.Running && cp.LSN > p.To && cp.LSN >= p.From:
		// a reload committed rows at LSN-1 above the changelog's own
		// watermark (no change of the table was streamed since): every
		// change below LSN is in them or superseded by them
		p.To = cp.LSN
	}
	switch {
	case len(st.Changelog.Keys) == 0:
		p.Skip = "the changelog has no primary key (cdclake.primary-key)"
	case st.Changelog.SnapshotID == 0:
		p.Skip = "the changelog is empty"
	case p.Hold != 0 && p.From > p.To:
		p.Skip = fmt.Sprintf("the watermark %d is past a copy in progress at %d: its rows will not be applied", p.From, p.Hold)
	case st.Snapshot.Exists && p.From > p.To:
		p.Skip = "the snapshot table is ahead of its changelog"
	case !st.Snapshot.Exists:
		p.Compact, p.Create = true, true
	case p.To > p.From:
		p.Compact = true
	}
	if st.Snapshot.Exists && p.Skip == "" {
		if p.FillDefaults = pendingDefaults(st.Changelog.Defaults, st.Snapshot.Defaults); len(p.FillDefaults) > 0 {
			p.Compact = true
		}
	}
	if p.Compact {
		for _, f := range st.Changelog.Files {
			if f.MaxLSN >= f.MinLSN && (f.MaxLSN < int64(p.From) || f.MinLSN >= int64(p.To)) {
				continue // pruned by its LSN range
			}
			p.ChangeFiles = append(p.ChangeFiles, f)
			p.ChangeRows += f.Rows
		}
	}
	p.Merges = planMerges(st.Changelog.Files, o.ChangelogFileSize/2, o.OpenHourMergeFiles)
	p.ExpireChangelogBefore = expireBefore(st.Changelog.Snapshots, st.Changelog.SnapshotID,
		st.Now.Add(-o.ChangelogRetention), o.ChangelogMaxSnapshots)
	p.ExpireSnapshotsBefore = expireBefore(st.Snapshot.Snapshots, st.Snapshot.SnapshotID,
		st.Now.Add(-o.SnapshotRetention), 0)
	return p
}

// planMerges picks, per hour, the files smaller than small: in older
// hours when there are two, in the newest hour (still filling) when there
// are openMin files smaller than small/8, and only those (files merged
// before wait for the hour to close, so they are not rewritten over and
// over). A merge reads its files into memory, so an hour's files are
// merged in groups of at most 2 × small bytes (ChangelogFileSize, the
// size of one merged file), however many accumulated.
func planMerges(files []ChangeFile, small int64, openMin int) []Merge {
	newest := int64(-1)
	for _, f := range files {
		newest = max(newest, f.Hour)
	}
	byHour := map[int64][]ChangeFile{}
	for _, f := range files {
		limit := small
		if f.Hour == newest {
			limit = small / 8
		}
		if f.Hour >= 0 && f.Bytes < limit {
			byHour[f.Hour] = append(byHour[f.Hour], f)
		}
	}
	var out []Merge
	for h, fs := range byHour {
		if len(fs) < 2 || (h == newest && len(fs) < openMin) {
			continue
		}
		sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })
		var group []ChangeFile
		var size int64
		for _, f := range fs {
			if len(group) > 0 && size+f.Bytes > 2*small {
				if len(group) > 1 {
					out = append(out, Merge{Hour: h, Files: group})
				}
				group, size = nil, 0
			}
			group, size = append(group, f), size+f.Bytes
		}
		if len(group) > 1 {
			out = append(out, Merge{Hour: h, Files: group})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Hour < out[j].Hour })
	return out
}

// expireBefore returns the time before which snapshots expire: older than
// cutoff, and beyond the newest maxKeep (when maxKeep > 0). The current
// snapshot never expires. It returns the zero time when none would.
func expireBefore(snaps []SnapshotInfo, current int64, cutoff time.Time, maxKeep int) time.Time {
	sorted := slices.Clone(snaps)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Time.After(sorted[j].Time) })
	if maxKeep > 0 && len(sorted) > maxKeep {
		if t := sorted[maxKeep-1].Time; t.After(cutoff) {
			cutoff = t
		}
	}
	for _, s := range sorted {
		if s.ID != current && s.Time.Before(cutoff) {
			return cutoff
		}
	}
	return time.Time{}
}
