package ingest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cdclake/cdclake/internal/pgtest"
)

func TestMetrics(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "metrics")
	setupTables(t, pg, "metrics")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	reg := prometheus.NewRegistry()
	o := Options{Source: url, Metrics: NewMetrics(reg)}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	runTxns(t, url, workload)
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(o.Metrics.rows.WithLabelValues("metrics")); got != 11 {
		t.Errorf("rows counter = %v, want the 11 changes of the workload", got)
	}
	if n := testutil.CollectAndCount(reg, "cdclake_ingest_flush_seconds"); n != 1 {
		t.Errorf("flush histogram series = %d, want 1", n)
	}
}
