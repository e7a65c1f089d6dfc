package compact

import "github.com/prometheus/client_golang/prometheus"

// Metrics are compaction's Prometheus metrics. Build them once per
// registry with NewMetrics and pass them in Options.
type Metrics struct {
	// Runs counts table compactions by result: "ok", "noop", "error".
	Runs *prometheus.CounterVec
	// Rows counts rows by kind: "changes" read from changelogs,
	// "rewritten" snapshot rows read back from files that were rewritten,
	// "written" snapshot rows written, "merged" changelog rows merged.
	Rows *prometheus.CounterVec
	// Files counts files by kind: "added", "removed", "merged", "orphan".
	Files *prometheus.CounterVec
	// Conflicts counts commits lost to a concurrent writer (then retried).
	Conflicts prometheus.Counter
	// Duration observes each table's compaction, housekeeping included.
	Duration prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg when it is
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cdclake", Subsystem: "compact", Name: "runs_total",
			Help: "Table compactions by result (ok, noop, error).",
		}, []string{"result"}),
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cdclake", Subsystem: "compact", Name: "rows_total",
			Help: "Rows processed by kind (changes, rewritten, written, merged).",
		}, []string{"kind"}),
		Files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cdclake", Subsystem: "compact", Name: "files_total",
			Help: "Files by kind (added, removed, merged, orphan).",
		}, []string{"kind"}),
		Conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cdclake", Subsystem: "compact", Name: "commit_conflicts_total",
			Help: "Commits lost to a concurrent writer and retried.",
		}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "cdclake", Subsystem: "compact", Name: "duration_seconds",
			Help:    "Time to compact one table, housekeeping included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Runs, m.Rows, m.Files, m.Conflicts, m.Duration)
	}
	return m
}
