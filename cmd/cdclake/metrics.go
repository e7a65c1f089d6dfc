package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/ingest"
)

// metricsRegistry holds every metric of this process: ingest, compaction
// and the HTTP API register here, and /metrics serves it.
var (
	metricsRegistry = newRegistry()
	ingestMetrics   = ingest.NewMetrics(metricsRegistry)
	compactMetrics  = compact.NewMetrics(metricsRegistry)
)

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
