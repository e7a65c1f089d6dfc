package main

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/cdclake/cdclake/dashboard"
	"github.com/cdclake/cdclake/query/check"
)

// Monitoring on cdclake serve (and so on cdclake run): the business checks
// of the check folder, evaluated on their schedules (GET /v1/checks, their
// gauges on /metrics, their violating rows in the lake under checks/), and
// the dashboard at / with the routes it adds (GET /v1/kpis/{name}/history,
// GET /v1/throughput). docs/monitoring.md describes them.

var checkMetrics = check.NewMetrics(metricsRegistry)

func init() { serveMounts = append(serveMounts, mountMonitor) }

func mountMonitor(mux *http.ServeMux, d serveDeps) error {
	dashboard.New(dashboard.Options{Catalog: d.Catalog, Bucket: d.Bucket, Logger: d.Logger}).Register(mux)
	dir := d.ChecksDir
	log := d.Logger.With("component", "serve")
	if _, err := os.Stat(dir); dir == "" || err != nil {
		log.Info("no check folder; checks are off", "dir", dir)
		return nil
	}
	r, err := check.New(d.Engine, check.Options{Dir: dir, Bucket: d.Bucket, Catalog: d.Catalog, Metrics: checkMetrics, Logger: d.Logger})
	if err != nil {
		return err
	}
	r.Register(mux)
	go func() {
		if err := r.Run(d.Ctx); err != nil {
			slog.Default().Error("checks stopped", "err", err)
		}
	}()
	return nil
}
