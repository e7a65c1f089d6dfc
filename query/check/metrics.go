package check

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the checks' Prometheus gauges, labelled by check, for
// alerting (Alertmanager pages on cdclake_check_failing == 1).
type Metrics struct {
	failing    *prometheus.GaugeVec
	violations *prometheus.GaugeVec
	thresholds *prometheus.GaugeVec
	errored    *prometheus.GaugeVec
	lastRun    *prometheus.GaugeVec
}

// NewMetrics registers the check gauges on reg; registering them twice
// on one registry panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"check"})
	}
	m := &Metrics{
		failing:    gauge("cdclake_check_failing", "1 while the check returns more violating rows than its threshold, else 0 (kept at its last value while runs fail)."),
		violations: gauge("cdclake_check_violations", "Rows the check's latest successful run returned."),
		thresholds: gauge("cdclake_check_threshold", "Violating rows the check tolerates."),
		errored:    gauge("cdclake_check_error", "1 when the check's latest run failed, else 0."),
		lastRun:    gauge("cdclake_check_last_run_timestamp_seconds", "Unix time the check's latest run started."),
	}
	reg.MustRegister(m.failing, m.violations, m.thresholds, m.errored, m.lastRun)
	return m
}

func (m *Metrics) threshold(c Check) {
	if m != nil {
		m.thresholds.WithLabelValues(c.Name).Set(float64(c.Threshold))
	}
}

func (m *Metrics) observe(st State) {
	if m == nil {
		return
	}
	name := st.Check.Name
	m.lastRun.WithLabelValues(name).Set(float64(st.RunAt.UnixNano()) / 1e9)
	if st.Err != nil {
		m.errored.WithLabelValues(name).Set(1)
		return
	}
	m.errored.WithLabelValues(name).Set(0)
	m.violations.WithLabelValues(name).Set(float64(st.Violations))
	failing := 0.0
	if st.Status == StatusFailing {
		failing = 1
	}
	m.failing.WithLabelValues(name).Set(failing)
}
