package ingest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Options configure one source's ingest. The zero value of every field
// but Source means its default.
type Options struct {
	// Source is the PostgreSQL URL of the database to read.
	Source string
	// Name names the source in the lake; default: the database name.
	Name string
	// Publication and Slot default to "cdclake_<name>".
	Publication string
	Slot        string
	// Tables limits a publication cdclake creates (schema.table; a bare
	// name means public). Empty: all tables.
	Tables []string
	// Snapshot is "initial" (default: copy the existing rows of every
	// table when the slot is created) or "never".
	Snapshot string
	// SnapshotWorkers is the number of connections reading a snapshot
	// (default: the number of cores).
	SnapshotWorkers int
	// CatchUp stops after everything committed before the start is in
	// the lake and acknowledged (batch mode).
	CatchUp bool
	// Resnapshot replaces a missing or invalidated slot, one past the
	// lake's watermark, or that of a source that moved to another server
	// or was restored, with a new one and reloads every table at its
	// position (the way out of lost changes). A moved source starts a new
	// epoch of lake positions (catalog.Source.LSNBase).
	Resnapshot bool
	// FlushTimeout bounds one flush (upload and commits), and each other
	// request to the lake or the source the stream waits for (the
	// look-ups of a Relation message, the record of a reload); past it
	// Run returns an error, as a request that never answers would
	// otherwise stall ingest for good. A replication connection that
	// receives nothing, not even a keepalive asked for, for the longer of
	// FlushTimeout and the server's wal_sender_timeout fails the same way
	// (default 2 min).
	FlushTimeout time.Duration

	// A batch is flushed when it holds FlushRows rows or FlushBytes bytes,
	// or its oldest row is FlushAge old (defaults 200,000 rows, 64 MiB, 1 s).
	FlushRows  int
	FlushBytes int64
	FlushAge   time.Duration
	// MaxBufferBytes bounds what is buffered while a flush runs; above it
	// receiving waits for the flush (default 4 × FlushBytes).
	MaxBufferBytes int64
	// MemoryBudget bounds the memory held by large transactions: the
	// changes of those PostgreSQL streams while they run spill to SpillDir
	// beyond a quarter of it, and every large transaction, streamed or
	// sent whole at its commit (protocol 1), is written in chunks of a
	// sixteenth, so that with the chunks in flight and Go's garbage
	// collector the process stays near the budget plus a fixed overhead
	// (default 256 MiB).
	MemoryBudget int64
	// SpillDir holds spilled transactions (default: a folder in the
	// system temp dir, removed at exit).
	SpillDir string
	// StatusInterval is how often the position is reported to PostgreSQL
	// (default 1 s); ProgressInterval how often progress is logged (5 s).
	StatusInterval   time.Duration
	ProgressInterval time.Duration
	// IdleAckInterval is how often an idle source's watermark follows the
	// server's WAL position, so the slot does not hold WAL (default 10 s).
	IdleAckInterval time.Duration
	// PartitionCheckInterval is how often the partitions of published
	// partitioned tables are compared with those their rows in the lake
	// came from; a table whose partitions changed is reloaded (default 5 s).
	PartitionCheckInterval time.Duration

	// Now is the clock a copy of existing rows (an initial snapshot or a
	// reload) reads its start from, which its rows carry as
	// _cdc_commit_ts, and the one a catch-up reads the time it proves the
	// lake complete through (catalog.Source.CaughtUpAt) from (default
	// time.Now; tests set it to play a copy that started long ago, or a
	// catch-up hours after the last commit).
	Now func() time.Time

	Hooks  Hooks
	Logger *slog.Logger
	// protocol1 asks for pgoutput protocol 1 without streaming even from
	// PostgreSQL 14 and later (tests: a server before 14 sends a large
	// transaction whole at its commit).
	protocol1 bool
	// Metrics, when set, receive the source's counters and gauges.
	Metrics *Metrics
}

func (o Options) withDefaults(dbName string) Options {
	if o.Name == "" {
		o.Name = dbName
	}
	if o.Publication == "" {
		o.Publication = slotName(o.Name)
	}
	if o.Slot == "" {
		o.Slot = slotName(o.Name)
	}
	if o.Snapshot == "" {
		o.Snapshot = "initial"
	}
	if o.SnapshotWorkers <= 0 {
		o.SnapshotWorkers = runtime.NumCPU()
	}
	if o.FlushRows <= 0 {
		o.FlushRows = 200_000
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = 64 << 20
	}
	if o.FlushAge <= 0 {
		o.FlushAge = time.Second
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 2 * time.Minute
	}
	if o.MaxBufferBytes <= 0 {
		o.MaxBufferBytes = 4 * o.FlushBytes
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = 256 << 20
	}
	if o.SpillDir == "" {
		o.SpillDir = filepath.Join(os.TempDir(), fmt.Sprintf("cdclake-spill-%s-%d", slotName(o.Name), os.Getpid()))
	}
	if o.StatusInterval <= 0 {
		o.StatusInterval = time.Second
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 5 * time.Second
	}
	if o.IdleAckInterval <= 0 {
		o.IdleAckInterval = 10 * time.Second
	}
	if o.PartitionCheckInterval <= 0 {
		o.PartitionCheckInterval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "ingest", "source", o.Name)
	return o
}
