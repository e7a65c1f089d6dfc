package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are ingest's Prometheus metrics, labelled by source. Build them
// once per registry with NewMetrics and share them between sources.
type Metrics struct {
	rows        *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	flushes     *prometheus.CounterVec
	flushTime   *prometheus.HistogramVec
	commitTime  *prometheus.HistogramVec
	lagBytes    *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	retainedWAL *prometheus.GaugeVec
}

// NewMetrics creates and registers ingest's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	src := []string{"source"}
	m := &Metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdclake_ingest_rows_total",
			Help: "Change rows committed to the lake."}, src),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdclake_ingest_bytes_total",
			Help: "Bytes of column values committed to the lake (text form)."}, src),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdclake_ingest_flushes_total",
			Help: "Batches committed."}, src),
		flushTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cdclake_ingest_flush_seconds",
			Help: "Time to write and commit one batch.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, src),
		commitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cdclake_ingest_commit_lag_seconds",
			Help:    "Time from a transaction's commit in PostgreSQL to its commit in the lake (the batch's last transaction).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}, src),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdclake_ingest_lag_bytes",
			Help: "WAL received but not yet committed to the lake."}, src),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdclake_ingest_watermark_age_seconds",
			Help: "Age of the commit time of the source watermark."}, src),
		retainedWAL: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdclake_ingest_slot_retained_wal_bytes",
			Help: "WAL the replication slot keeps on the source (from pg_replication_slots)."}, src),
	}
	reg.MustRegister(m.rows, m.bytes, m.flushes, m.flushTime, m.commitTime, m.lagBytes, m.lagSeconds, m.retainedWAL)
	return m
}
