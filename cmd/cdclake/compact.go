package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cdclake/cdclake/compact"
)

// compactCommand turns changelogs into snapshot tables once and tidies
// both (merges small changelog files, expires snapshots, deletes orphan
// files).
type compactCommand struct {
	out io.Writer
}

func init() { commands["compact"] = func() command { return &compactCommand{out: os.Stdout} } }

func (c *compactCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	var lf lakeFlags
	lf.register(fs)
	var tables string
	var dryRun bool
	var o compact.Options
	fs.StringVar(&tables, "table", "", "comma-separated source.schema.table list to compact (default: every table)")
	fs.BoolVar(&dryRun, "dry-run", false, "print what would be done, change nothing")
	fs.DurationVar(&o.SnapshotRetention, "retention", 0, "how long old snapshots of snapshot tables stay readable (default 168h)")
	fs.DurationVar(&o.OrphanAge, "orphan-age", 0, "age after which unreferenced files are deleted (default 24h)")
	fs.IntVar(&o.OpenHourMergeFiles, "open-hour-merge-files", 0, "small files the newest changelog hour gathers before they are merged (default 100)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range strings.Split(tables, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ref, err := compact.ParseTableRef(s)
		if err != nil {
			return fmt.Errorf("--table: %w", err)
		}
		o.Tables = append(o.Tables, ref)
	}
	o.OrphanInterval = -1 // every run of the command looks for orphans
	cat, _, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	cp := compact.New(cat, o)
	if dryRun {
		return c.plan(ctx, cp, o)
	}
	results, err := cp.RunOnce(ctx)
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tWATERMARK\tCHANGES\tROWS WRITTEN\tFILES +/-\tMERGED\tEXPIRED\tORPHANS\tTOOK\tNOTE")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t+%d/-%d\t%d\t%d\t%d\t%s\t%s\n", r.Table, r.Plan.To, r.ChangeRows, r.WrittenRows,
			r.FilesAdded, r.FilesRemoved, r.MergedFiles, r.ExpiredSnapshots, r.OrphanFiles, r.Duration.Round(time.Millisecond), r.Skipped)
	}
	tw.Flush()
	return err
}

// plan prints each table's plan without executing it.
func (c *compactCommand) plan(ctx context.Context, cp *compact.Compactor, o compact.Options) error {
	refs, err := cp.Tables(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tACTION\tFROM\tTO\tCHANGE FILES\tCHANGE ROWS\tMERGES\tEXPIRE CHANGELOG BEFORE\tEXPIRE SNAPSHOTS BEFORE")
	var errs []error
	for _, ref := range refs {
		st, err := cp.Load(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p := o.Plan(st)
		action := "none"
		switch {
		case p.Skip != "":
			action = "skip: " + p.Skip
		case p.Create:
			action = "create"
		case p.Compact:
			action = "compact"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", ref, action, p.From, p.To, len(p.ChangeFiles), p.ChangeRows,
			len(p.Merges), fmtTime(p.ExpireChangelogBefore), fmtTime(p.ExpireSnapshotsBefore))
	}
	tw.Flush()
	return errors.Join(errs...)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
