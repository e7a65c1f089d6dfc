package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/config"
	"github.com/cdclake/cdclake/ingest"
)

// runCommand runs everything a deployment needs from one config file:
// an ingest per source, compaction on a schedule, KPIs, checks and serve.
type runCommand struct{}

func init() { commands["run"] = func() command { return &runCommand{} } }

func (c *runCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "cdclake.yaml", "configuration file (see examples/cdclake.yaml)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := slog.Default().With("component", "run")
	lf := lakeFlags{lake: cfg.Lake, catalog: cfg.Catalog}
	// every source is checked before anything starts, so a typo fails fast
	var sources []ingest.Options
	var budgets []int64
	for _, s := range cfg.Sources {
		o := s.IngestOptions()
		o.Metrics = ingestMetrics
		if err := ingest.Check(ctx, o); err != nil {
			return fmt.Errorf("source %s: %w", s.Name, err)
		}
		sources = append(sources, o)
		budgets = append(budgets, o.MemoryBudget)
	}
	setMemoryLimit(budgets...)
	cat, _, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		superviseSources(gctx, cat, sources, slog.Default().With("component", "ingest"))
		return nil
	})
	// the catalog API closes an idle source's hours once it is caught up
	sampler := newWALSampler(sources, log)
	g.Go(func() error {
		sampler.run(gctx)
		return nil
	})
	if cfg.Compaction.Interval > 0 {
		comp := compact.New(cat, compact.Options{
			Interval:           cfg.Compaction.Interval,
			SnapshotRetention:  cfg.Compaction.SnapshotRetention,
			ChangelogRetention: cfg.Compaction.ChangelogRetention,
			OrphanAge:          cfg.Compaction.OrphanAge,
			Metrics:            compactMetrics,
		})
		g.Go(func() error { return comp.Run(gctx) })
	}
	if cfg.Serve.Addr != "" || cfg.Serve.PGAddr != "" {
		args := []string{"--lake", cfg.Lake, "--addr", cfg.Serve.Addr, "--pg-addr", cfg.Serve.PGAddr,
			"--kpis", cfg.KPIs.Dir, "--checks", cfg.Checks.Dir}
		if cfg.Catalog != "" {
			args = append(args, "--catalog", cfg.Catalog)
		}
		if cfg.Serve.PGTLSCert != "" {
			args = append(args, "--pg-tls-cert", cfg.Serve.PGTLSCert, "--pg-tls-key", cfg.Serve.PGTLSKey)
		}
		g.Go(func() error { return (&serveCommand{status: sampler.status}).Run(gctx, args) })
	}
	log.Info("running", "sources", len(sources), "compaction_interval", cfg.Compaction.Interval, "http", cfg.Serve.Addr, "pg", cfg.Serve.PGAddr)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
