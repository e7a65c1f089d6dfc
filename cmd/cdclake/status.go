package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/catalog/rest"
	"github.com/cdclake/cdclake/lake"
)

// statusCommand prints the lake's sources and tables: the facts the
// catalog API serves, for a terminal.
type statusCommand struct {
	out io.Writer
	now func() time.Time
}

func init() {
	commands["status"] = func() command { return &statusCommand{out: os.Stdout, now: time.Now} }
}

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var lf lakeFlags
	lf.register(fs)
	format := fs.String("format", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format must be text or json, not %q", *format)
	}
	cat, err := openCatalogReadOnly(ctx, lf)
	if err != nil {
		return err
	}
	defer cat.Close()
	r := rest.NewReader(rest.Options{Catalog: cat, Now: c.now})
	sources, err := r.Sources(ctx)
	if err != nil {
		return err
	}
	tables, err := r.Tables(ctx, "", "")
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"sources": sources, "tables": tables})
	}
	return printStatus(c.out, sources, tables)
}

// openCatalogReadOnly opens the catalog of a lake without the write probe
// the writing commands run, and refuses to create a missing catalog file.
func openCatalogReadOnly(ctx context.Context, lf lakeFlags) (*catalog.Catalog, error) {
	loc, err := lake.Parse(lf.lake)
	if err != nil {
		return nil, err
	}
	catURL := lf.catalog
	if catURL == "" {
		if loc.Scheme != "file" {
			return nil, errors.New("an s3:// lake needs --catalog (a SQLite file path or a postgres:// URL)")
		}
		catURL = filepath.Join(loc.Path, "catalog.db")
		if _, err := os.Stat(catURL); err != nil {
			return nil, fmt.Errorf("no catalog at %s (nothing ingested into %s yet?)", catURL, loc)
		}
	}
	props := map[string]string{}
	if loc.Scheme == "s3" {
		bucket, err := lake.Open(ctx, loc)
		if err != nil {
			return nil, err
		}
		if s3b, ok := bucket.(*lake.S3Bucket); ok {
			if ep := s3b.Options().Endpoint; ep != "" {
				props["s3.endpoint"] = ep
			}
			if region := s3b.AWSConfig().Region; region != "" {
				props["s3.region"] = region
			}
		}
	}
	return catalog.Open(ctx, catalog.Options{URL: catURL, Warehouse: loc.URL(), Props: props})
}

func printStatus(w io.Writer, sources []rest.Source, tables []rest.Table) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSTATE\tWATERMARK\tCOMMITTED\tLAG\tSLOT LAG")
	for _, s := range sources {
		lag := "-"
		if s.LagSeconds != nil {
			lag = (time.Duration(*s.LagSeconds) * time.Second).String()
		}
		slot := "-"
		if s.SlotLagBytes != nil {
			slot = strconv.FormatInt(*s.SlotLagBytes, 10) + " B"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, s.Watermark.LSNText, timeOrDash(s.Watermark.CommitTime), lag, slot)
	}
	if len(sources) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TABLE\tROWS\tCHANGES\tLAST CHANGE\tLSN\tSCHEMA")
	for _, t := range tables {
		rows, changes, last, lsn := "-", "-", "-", "-"
		if t.Rows != nil {
			rows = strconv.FormatInt(*t.Rows, 10)
		}
		if t.Changelog != nil {
			changes = strconv.FormatInt(t.Changelog.Rows, 10)
		}
		if t.LastChange != nil {
			last = timeOrDash(&t.LastChange.Time)
			if t.LastChange.LSN != nil {
				lsn = pglogrepl.LSN(*t.LastChange.LSN).String()
			}
		}
		fmt.Fprintf(tw, "%s.%s.%s\t%s\t%s\t%s\t%s\tv%d\n", t.Source, t.Schema, t.Name, rows, changes, last, lsn, t.SchemaVersion)
	}
	if len(tables) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
