package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/dashboard"
	"github.com/cdclake/cdclake/query"
	"github.com/cdclake/cdclake/query/check"
)

// Monitoring on cdclake serve (and so on cdclake run): the business checks
// of the check folder, evaluated on their schedules (GET /v1/checks, their
// gauges on /metrics, their violating rows in the lake under checks/), and
// the dashboard at / with the routes it adds (GET /v1/kpis/{name}/history,
// GET /v1/throughput). docs/monitoring.md describes them.

// checksEnv names the environment variable holding the check folder
// (default ./checks; set and empty turns checks off).
const checksEnv = "CDCLAKE_CHECKS"

var checkMetrics = check.NewMetrics(metricsRegistry)

func init() { serveMounts = append(serveMounts, mountMonitor) }

func mountMonitor(mux *http.ServeMux, d serveDeps) error {
	dashboard.New(dashboard.Options{Catalog: d.Catalog, Bucket: d.Bucket, Logger: d.Logger}).Register(mux)
	dir, set := os.LookupEnv(checksEnv)
	if !set {
		dir = "./checks"
	}
	log := d.Logger.With("component", "serve")
	if _, err := os.Stat(dir); dir == "" || err != nil {
		log.Info("no check folder; checks are off", "dir", dir)
		return nil
	}
	ctx, stop := context.WithCancel(context.Background())
	c := closing{q: d.Engine, cat: d.Catalog, stop: stop}
	r, err := check.New(c, check.Options{Dir: dir, Bucket: d.Bucket, Catalog: c, Metrics: checkMetrics, Logger: d.Logger})
	if err != nil {
		stop()
		return err
	}
	r.Register(mux)
	go func() {
		if err := r.Run(ctx); err != nil {
			slog.Default().Error("checks stopped", "err", err)
		}
	}()
	return nil
}

// closing stops the check runner once serve has closed the engine or the
// catalog: serveDeps carries no context for work in the background.
type closing struct {
	q    query.Querier
	cat  *catalog.Catalog
	stop context.CancelFunc
}

func (c closing) Query(ctx context.Context, sql string, args ...any) (*query.Result, error) {
	res, err := c.q.Query(ctx, sql, args...)
	c.seen(err)
	return res, err
}

func (c closing) Sources(ctx context.Context) ([]catalog.Source, error) {
	srcs, err := c.cat.Sources(ctx)
	c.seen(err)
	return srcs, err
}

func (c closing) seen(err error) {
	if err != nil && strings.Contains(err.Error(), "database is closed") {
		c.stop()
	}
}
