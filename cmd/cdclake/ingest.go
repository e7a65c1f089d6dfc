package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cdclake/cdclake/ingest"
)

// ingestCommand streams one PostgreSQL database into the lake.
type ingestCommand struct{}

// ingestClock, when set, is ingest's clock (ingest.Options.Now); tests
// move it.
var ingestClock func() time.Time

func init() { commands["ingest"] = func() command { return &ingestCommand{} } }

func (c *ingestCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var lf lakeFlags
	lf.register(fs)
	var o ingest.Options
	var tables string
	fs.StringVar(&o.Source, "source", "", "PostgreSQL URL of the database to stream, e.g. postgres://user@host:5432/shop (password from PGPASSWORD or ~/.pgpass)")
	fs.StringVar(&o.Name, "name", "", "source name in the lake (default: the database name)")
	fs.StringVar(&o.Publication, "publication", "", "publication to read (default cdclake_<name>; created when missing)")
	fs.StringVar(&o.Slot, "slot", "", "replication slot (default cdclake_<name>; created when missing)")
	fs.StringVar(&tables, "tables", "", "comma-separated schema.table list for a new publication (default: all tables)")
	fs.StringVar(&o.Snapshot, "snapshot", "initial", "copy existing rows of tables never loaded before: initial or never")
	fs.IntVar(&o.SnapshotWorkers, "snapshot-workers", 0, "connections reading a snapshot in parallel (default: number of cores)")
	fs.BoolVar(&o.CatchUp, "catch-up", false, "stop once everything committed before the start is in the lake")
	fs.DurationVar(&o.FlushAge, "flush-interval", 0, "longest time a change waits before it is committed (default 1s)")
	fs.DurationVar(&o.FlushTimeout, "flush-timeout", 0, "longest time one flush, or another request to the lake or the source that ingest waits for, may take before ingest gives up and exits (default 2m)")
	fs.BoolVar(&o.Resnapshot, "resnapshot", false, "reload every table into a new replication slot: after the slot was lost, invalidated or is past the lake, or the source moved to another server or was restored (starts a new epoch of positions)")
	fs.Int64Var(&o.MemoryBudget, "memory-budget", 0, "bytes of memory for transactions streamed while they run, beyond which they spill to disk (default 256 MiB)")
	fs.DurationVar(&o.PartitionCheckInterval, "partition-check-interval", 0, "how often the partitions of partitioned tables are checked; a table whose partitions were attached, detached, dropped or truncated is reloaded (default 5s)")
	fs.StringVar(&o.SpillDir, "spill-dir", "", "folder for spilled transactions (default: in the system temp folder)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Source == "" {
		return errors.New("--source is required (a PostgreSQL URL such as postgres://user@host:5432/db)")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags go before nothing else)", fs.Arg(0))
	}
	if o.FlushAge < 0 || o.FlushTimeout < 0 || o.MemoryBudget < 0 || o.SnapshotWorkers < 0 || o.PartitionCheckInterval < 0 {
		return errors.New("--flush-interval, --flush-timeout, --memory-budget, --snapshot-workers and --partition-check-interval must not be negative")
	}
	if o.Snapshot != "never" && o.Snapshot != "initial" {
		return fmt.Errorf("--snapshot must be initial or never, not %q", o.Snapshot)
	}
	for _, t := range strings.Split(tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.Tables = append(o.Tables, t)
		}
	}
	// check the source before touching the lake, so bad input creates nothing
	if err := ingest.Check(ctx, o); err != nil {
		return err
	}
	cat, _, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	setMemoryLimit(o.MemoryBudget)
	o.Now = ingestClock
	return ingest.Run(ctx, cat, o)
}

// setMemoryLimit asks the garbage collector to keep the heap near the
// ingest memory budgets (a default of 256 MiB each) plus a fixed overhead,
// unless GOMEMLIMIT says otherwise.
func setMemoryLimit(budgets ...int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(256 << 20)
	for _, b := range budgets {
		if b <= 0 {
			b = 256 << 20
		}
		limit += b
	}
	debug.SetMemoryLimit(limit)
}
