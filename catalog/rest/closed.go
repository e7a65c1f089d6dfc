package rest

import (
	"time"

	"github.com/cdclake/cdclake/catalog"
)

// The pull contract, on metadata only.
//
// A source is complete through time T when every transaction it committed
// before T is in the lake: T is the watermark's commit time (the commit
// time of the last transaction at or below the watermark LSN), or later
// when the process running the source reports it caught up, or when a
// catch-up run (ingest --catch-up) recorded in the catalog that it reached
// the server's WAL end (catalog.Source.CaughtUpAt): an idle source commits
// nothing, so its watermark's commit time stands still.
//
// A table is complete through its source's time, but no later than the
// start of a copy of its existing rows in progress (an initial snapshot
// or a reload): the copy's rows carry its start as _cdc_commit_ts and
// land when it commits, possibly hours later.
//
// The hour partition [start, start+1h) of a changelog is closed when the
// table is complete through start + 1h + grace. No row can be added to a
// closed partition: a transaction committed later carries a later
// _cdc_commit_ts, and so does a copy started later. Its files may still
// be replaced by compaction (the same rows in fewer files), which raises
// the partition's version.

// CompleteThrough returns the time before which every change of the source
// is in the lake, the zero time when unknown.
func CompleteThrough(src catalog.Source, st SourceStatus) time.Time {
	t := src.CommitTime
	for _, c := range []time.Time{src.CaughtUpAt, st.CaughtUpAt} {
		if c.After(t) {
			t = c
		}
	}
	return t.UTC()
}

// TableCompleteThrough returns the time a table is complete through, for
// a source complete through complete and the catalog's record of the
// table's latest copy (nil when there is none): complete, or the start of
// the copy while it runs, whichever is earlier.
func TableCompleteThrough(complete time.Time, rec *catalog.TableSnapshot) time.Time {
	if rec != nil && rec.State == catalog.SnapshotRunning && !complete.IsZero() && rec.StartedAt.Before(complete) {
		return rec.StartedAt.UTC()
	}
	return complete
}

// Closed reports whether the hour partition starting at start is closed
// for a table complete through complete.
func Closed(start, complete time.Time, grace time.Duration) bool {
	return !complete.IsZero() && !complete.Before(ClosesAt(start, grace))
}

// ClosesAt is the time the table must be complete through for the hour
// starting at start to close.
func ClosesAt(start time.Time, grace time.Duration) time.Time {
	return start.Add(time.Hour + grace).UTC()
}
