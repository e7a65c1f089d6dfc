package main

import (
	"context"
	"errors"
	"flag"
	"strings"

	"github.com/cdclake/cdclake/ingest"
)

// snapshotCommand reloads tables of a source while its ingest may keep
// streaming.
type snapshotCommand struct{}

func init() { commands["snapshot"] = func() command { return &snapshotCommand{} } }

func (c *snapshotCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	var lf lakeFlags
	lf.register(fs)
	var o ingest.Options
	var tables multiFlag
	fs.StringVar(&o.Source, "source", "", "PostgreSQL URL of the source database")
	fs.StringVar(&o.Name, "name", "", "source name in the lake (default: the database name)")
	fs.Var(&tables, "table", "table to reload, schema.table (repeat for several)")
	fs.IntVar(&o.SnapshotWorkers, "snapshot-workers", 0, "connections reading in parallel (default: number of cores)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Source == "" || len(tables) == 0 {
		return errors.New("--source and at least one --table schema.table are required")
	}
	check := o
	check.Tables = tables // the tables reloaded, not the database's others
	if err := ingest.Check(ctx, check); err != nil && !errors.Is(err, ingest.ErrSlotInUse) {
		return err // a running ingest holding the slot is expected
	}
	cat, _, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	return ingest.Reload(ctx, cat, o, tables)
}

// multiFlag collects a repeated flag; commas also separate values.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}
