package check

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/demo"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// demoData is known data of the demo's three services: orders 3 and 4
// were paid an hour ago and not shipped, order 5 was paid just now,
// payment 9 is for order 999, which the orders service does not have.
var demoData = map[string][]string{
	"orders": {
		`INSERT INTO customers (name, city) VALUES ('a', 'Oslo'), ('b', 'Lyon')`,
		`INSERT INTO orders (customer_id, status, amount, created_at) SELECT 1 + g % 2,
			(ARRAY['shipped','shipped','paid','paid','paid','placed'])[g], 10 * g, now() - interval '2 hours' FROM generate_series(1, 6) g`,
	},
	"payments": {
		`INSERT INTO payments (order_id, amount, method, status, created_at) SELECT g, 10 * g, 'card', 'captured', now() - interval '1 hour' FROM generate_series(1, 4) g`,
		`INSERT INTO payments (order_id, amount, method, status) VALUES (5, 50, 'card', 'captured')`,
		`INSERT INTO payments (id, order_id, amount, method, status, created_at) VALUES (9, 999, 99, 'paypal', 'captured', now() - interval '1 hour')`,
	},
	"shipping": {
		`INSERT INTO shipments (order_id, carrier, status) VALUES (1, 'DHL', 'delivered'), (2, 'UPS', 'in_transit')`,
	},
}

// demoLake creates the demo's databases on pg with demoData and ingests
// them into a folder lake.
type demoLake struct {
	pg  *pgtest.Cluster
	cat *catalog.Catalog
	loc lake.Location
}

func newDemoLake(t *testing.T) *demoLake {
	t.Helper()
	d := &demoLake{pg: pgtest.Start(t)}
	var err error
	if d.loc, err = lake.Parse(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	d.cat, err = catalog.Open(context.Background(), catalog.Options{URL: filepath.Join(t.TempDir(), "catalog.db"), Warehouse: d.loc.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cat.Close() })
	for _, db := range demo.Services {
		d.pg.CreateDB(t, db)
		d.pg.Exec(t, db, demo.Schemas[db])
		d.pg.Exec(t, db, demoData[db]...)
		d.catchUp(t, db)
	}
	return d
}

func (d *demoLake) catchUp(t *testing.T, db string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ingest.Run(ctx, d.cat, ingest.Options{Source: d.pg.URL(db), CatchUp: true}); err != nil {
		t.Fatalf("ingest %s: %v", db, err)
	}
}

// TestShippedChecks evaluates the shipped checks on known data, then
// changes the data and evaluates them again.
func TestShippedChecks(t *testing.T) {
	d := newDemoLake(t)
	ctx := context.Background()
	e, err := query.Open(ctx, d.cat, query.Options{Lake: d.loc})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	bucket, err := lake.Open(ctx, d.loc)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	clock := time.Now()
	r, err := New(e, Options{Dir: "../../checks", Bucket: bucket, Catalog: d.cat, Metrics: NewMetrics(reg), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		status     string
		violations int64
		firstRow   string // the sample's first row, as JSON
	}
	expect := func(step string, checks map[string]want) {
		t.Helper()
		for name, w := range checks {
			st, err := r.RunCheck(ctx, name)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if st.Status != w.status || st.Violations != w.violations {
				t.Errorf("%s: %s is %s with %d violations, want %s with %d", step, name, st.Status, st.Violations, w.status, w.violations)
			}
			if n := int64(len(st.Sample.Rows)); n != w.violations {
				t.Errorf("%s: %s sample has %d rows", step, name, n)
			}
			if w.firstRow != "" && (len(st.Sample.Rows) == 0 || !strings.HasPrefix(string(st.Sample.Rows[0]), w.firstRow)) {
				t.Errorf("%s: %s sample = %s, want a first row starting %s", step, name, st.Sample.Rows, w.firstRow)
			}
			ok, err := bucket.Exists(ctx, st.Key)
			if err != nil || !ok || !strings.HasPrefix(st.Key, "checks/"+name+"/run=") {
				t.Errorf("%s: %s result %q not in the lake: %v", step, name, st.Key, err)
			}
			failing := 0.0
			if w.status == StatusFailing {
				failing = 1
			}
			if got := testutil.ToFloat64(r.metrics.failing.WithLabelValues(name)); got != failing {
				t.Errorf("%s: cdclake_check_failing{check=%q} = %v", step, name, got)
			}
			if got := testutil.ToFloat64(r.metrics.violations.WithLabelValues(name)); got != float64(w.violations) {
				t.Errorf("%s: cdclake_check_violations{check=%q} = %v", step, name, got)
			}
		}
	}
	expect("known data", map[string]want{
		"paid_not_shipped":       {StatusFailing, 2, "[3,2,30.00,"},
		"payments_without_order": {StatusFailing, 1, "[9,999,99.00,"},
		"source_freshness":       {StatusOK, 0, ""},
	})
	failingSince, _ := r.State("paid_not_shipped")

	// shipping ships order 3, the orders service gets (cancelled) order 999
	d.pg.Exec(t, "shipping", `INSERT INTO shipments (order_id, carrier, status) VALUES (3, 'DHL', 'in_transit')`)
	d.pg.Exec(t, "orders", `INSERT INTO orders (id, customer_id, status, amount) VALUES (999, 1, 'cancelled', 99)`)
	d.catchUp(t, "shipping")
	d.catchUp(t, "orders")
	clock = clock.Add(time.Second)
	expect("after shipping", map[string]want{
		"paid_not_shipped":       {StatusFailing, 1, "[4,1,40.00,"},
		"payments_without_order": {StatusOK, 0, ""},
	})
	if st, _ := r.State("paid_not_shipped"); !st.Since.Equal(failingSince.Since) {
		t.Errorf("failing since %v, was %v: a check still failing keeps its since", st.Since, failingSince.Since)
	}
	if st, _ := r.State("payments_without_order"); !st.Since.Equal(clock.UTC()) {
		t.Errorf("ok since %v, want %v", st.Since, clock)
	}

	// an hour without changes: every source is stale
	clock = clock.Add(time.Hour)
	expect("an hour later", map[string]want{"source_freshness": {StatusFailing, 3, `["orders",`}})

	// the HTTP API and the metrics
	mux := http.NewServeMux()
	r.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var list struct{ Checks []StateJSON }
	getJSON(t, srv.URL+"/v1/checks", &list)
	if len(list.Checks) != 3 || list.Checks[0].Name != "paid_not_shipped" || list.Checks[0].Status != StatusFailing ||
		list.Checks[0].Since == nil || list.Checks[0].Sample == nil || len(list.Checks[0].Sample.Columns) != 5 {
		t.Errorf("GET /v1/checks = %+v", list)
	}
	var one StateJSON
	getJSON(t, srv.URL+"/v1/checks/source_freshness", &one)
	if one.Status != StatusFailing || one.Violations != 3 || one.Threshold != 0 || one.Schedule != "30s" {
		t.Errorf("GET /v1/checks/source_freshness = %+v", one)
	}
	resp, err := http.Post(srv.URL+"/v1/checks/payments_without_order/run", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&one)
	resp.Body.Close()
	if resp.StatusCode != 200 || one.Status != StatusOK {
		t.Errorf("POST run: %d %+v", resp.StatusCode, one)
	}
	if resp, err := http.Get(srv.URL + "/v1/checks/nope"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown check: %v %v", resp.StatusCode, err)
	}
	n, err := testutil.GatherAndCount(reg, "cdclake_check_failing", "cdclake_check_violations", "cdclake_check_threshold")
	if err != nil || n != 9 {
		t.Errorf("gathered %d check series: %v", n, err)
	}
}

// TestFailedRun: a check whose SQL fails is in error, keeps the last
// counts, and its failing gauge keeps its value.
func TestFailedRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "c.sql"), "-- threshold: 1\nSELECT 1 AS a UNION ALL SELECT 2")
	q := &flaky{}
	reg := prometheus.NewRegistry()
	r, err := New(q, Options{Dir: dir, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State("c"); st.Status != StatusPending {
		t.Errorf("before the first run: %s", st.Status)
	}
	q.rows = 2
	if st, err := r.RunCheck(context.Background(), "c"); err != nil || st.Status != StatusFailing {
		t.Fatalf("%+v %v", st, err)
	}
	q.fail = true
	st, err := r.RunCheck(context.Background(), "c")
	if err == nil || st.Status != StatusError || st.Violations != 2 || st.Err == nil {
		t.Errorf("failed run: %+v %v", st, err)
	}
	if got := testutil.ToFloat64(r.metrics.errored.WithLabelValues("c")); got != 1 {
		t.Errorf("cdclake_check_error = %v", got)
	}
	if got := testutil.ToFloat64(r.metrics.failing.WithLabelValues("c")); got != 1 {
		t.Errorf("cdclake_check_failing = %v", got)
	}
}

func TestSourcesNeedCatalog(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.sql"), "SELECT * FROM cdclake_sources")
	r, err := New(&flaky{}, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RunCheck(context.Background(), "f"); err == nil || !strings.Contains(err.Error(), "needs the catalog") {
		t.Errorf("err = %v", err)
	}
}
