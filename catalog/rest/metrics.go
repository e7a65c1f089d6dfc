package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics count the service's requests, labelled by route pattern.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdclake_http_requests_total",
			Help: "HTTP requests served by the catalog API, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cdclake_http_request_duration_seconds",
			Help:    "Time to answer catalog API requests, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"route"}),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name (a second server on the same registry shares the metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts and logs requests of one route. Only method, path,
// status and duration are logged: never headers, so never the token.
func (m *httpMetrics) instrument(pattern string, log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		took := time.Since(start)
		m.requests.WithLabelValues(pattern, r.Method, strconv.Itoa(sw.code)).Inc()
		m.duration.WithLabelValues(pattern).Observe(took.Seconds())
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.code, "took", took)
	})
}

// catalogCollector exports gauges read from the catalog at scrape time.
type catalogCollector struct {
	r *Reader
}

var (
	descUp = prometheus.NewDesc("cdclake_catalog_up",
		"1 when the catalog answered the last scrape, else 0.", nil, nil)
	descLag = prometheus.NewDesc("cdclake_source_watermark_lag_seconds",
		"Seconds since the time every change of the source is in the lake through (watermark commit time, or caught-up time).", []string{"source"}, nil)
	descLSN = prometheus.NewDesc("cdclake_source_watermark_lsn",
		"The source's watermark LSN: every change at or below it is in the lake.", []string{"source"}, nil)
	descSlotLag = prometheus.NewDesc("cdclake_source_slot_lag_bytes",
		"WAL the source's replication slot holds past its confirmed position, when known.", []string{"source"}, nil)
	descTables = prometheus.NewDesc("cdclake_tables",
		"Iceberg tables in the lake, by source and kind (changelog or snapshot).", []string{"source", "kind"}, nil)
)

func (c *catalogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descLag, descLSN, descSlotLag, descTables} {
		ch <- d
	}
}

func (c *catalogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sources, err := c.r.Sources(ctx)
	var tables []lakeTable
	if err == nil {
		tables, err = c.r.list(ctx)
	}
	if err != nil {
		c.r.o.Logger.Warn("collect catalog metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, s := range sources {
		ch <- prometheus.MustNewConstMetric(descLSN, prometheus.GaugeValue, float64(s.Watermark.LSN), s.Name)
		if s.LagSeconds != nil {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, *s.LagSeconds, s.Name)
		}
		if s.SlotLagBytes != nil {
			ch <- prometheus.MustNewConstMetric(descSlotLag, prometheus.GaugeValue, float64(*s.SlotLagBytes), s.Name)
		}
	}
	counts := map[[2]string]int{}
	for _, t := range tables {
		if t.changelog != nil {
			counts[[2]string{t.ref.Source, "changelog"}]++
		}
		if t.snapshot != nil {
			counts[[2]string{t.ref.Source, "snapshot"}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descTables, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
