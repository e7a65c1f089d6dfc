package compact

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// PropCompactionID is a summary key naming the compaction run that wrote
// a snapshot, so a commit whose outcome is unknown can be checked. (The
// snapshot table's properties and columns are in package lakeformat.)
const PropCompactionID = "cdclake.compaction-id"

// TableRef names one source table: source, schema and table name.
type TableRef struct {
	Source, Schema, Name string
}

// ParseTableRef parses "source.schema.table".
func ParseTableRef(s string) (TableRef, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return TableRef{}, fmt.Errorf("table %q: want source.schema.table", s)
	}
	return TableRef{parts[0], parts[1], parts[2]}, nil
}

func (r TableRef) String() string { return r.Source + "." + r.Schema + "." + r.Name }

// Options configure compaction. The zero value of every field means its
// default.
type Options struct {
	// Tables limits compaction to these tables (default: every changelog
	// table in the catalog).
	Tables []TableRef

	// FileSize is the target size of a snapshot table's data files
	// (default 32 MiB). A change rewrites the files whose key range holds
	// it, so smaller files mean less rewriting and more files.
	FileSize int64
	// ChangelogFileSize is the target size of merged changelog files
	// (default 128 MiB).
	ChangelogFileSize int64
	// OpenHourMergeFiles is how many files under ChangelogFileSize/16 the
	// newest (still filling) hour of a changelog gathers before they are
	// merged (default 100). Older hours are merged whenever they hold two
	// files under ChangelogFileSize/2.
	OpenHourMergeFiles int

	// SnapshotRetention is how long a snapshot table's old snapshots stay
	// readable (time travel) before they expire (default 7 days).
	SnapshotRetention time.Duration
	// ChangelogRetention is how long a changelog's snapshots are kept
	// (default 15 minutes), and ChangelogMaxSnapshots how many at most
	// (default 100), so its metadata stays small at a commit a second.
	// Rows are never lost by expiry; only the snapshot history shortens.
	ChangelogRetention    time.Duration
	ChangelogMaxSnapshots int
	// OrphanAge is how old a file no snapshot references must be before
	// it is deleted (default 24 h): younger ones may belong to a commit
	// in progress, or to a reader that planned on an expired snapshot.
	// OrphanInterval is how often a Compactor looks for them (default
	// 1 h; every pass when negative).
	OrphanAge      time.Duration
	OrphanInterval time.Duration

	// MaxChangeRows bounds the changelog rows one compaction commit
	// applies (default 1,000,000), so that its memory does not grow with
	// a backlog (compaction stopped, or held back by a reload, for a long
	// time): a longer backlog is applied oldest first, in LSN order, in
	// several commits of at most this many rows each. The rows of one
	// transaction (one _cdc_lsn, such as an initial copy) are never
	// split: one larger than this is applied whole.
	MaxChangeRows int64

	// Interval is the pause between passes of Compactor.Run (default 1 min).
	Interval time.Duration
	// Retries bounds commit attempts lost to concurrent writers (default 8).
	Retries int

	Logger  *slog.Logger
	Metrics *Metrics
}

func (o Options) withDefaults() Options {
	if o.FileSize <= 0 {
		o.FileSize = 32 << 20
	}
	if o.ChangelogFileSize <= 0 {
		o.ChangelogFileSize = 128 << 20
	}
	if o.OpenHourMergeFiles <= 0 {
		o.OpenHourMergeFiles = 100
	}
	if o.SnapshotRetention <= 0 {
		o.SnapshotRetention = 7 * 24 * time.Hour
	}
	if o.ChangelogRetention <= 0 {
		o.ChangelogRetention = 15 * time.Minute
	}
	if o.ChangelogMaxSnapshots <= 0 {
		o.ChangelogMaxSnapshots = 100
	}
	if o.OrphanAge <= 0 {
		o.OrphanAge = 24 * time.Hour
	}
	if o.OrphanInterval == 0 {
		o.OrphanInterval = time.Hour
	}
	if o.MaxChangeRows <= 0 {
		o.MaxChangeRows = 1_000_000
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Retries <= 0 {
		o.Retries = 8
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "compact")
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return o
}
