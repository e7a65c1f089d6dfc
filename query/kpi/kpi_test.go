package kpi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, text string
		want       KPI
		err        string
	}{
		{name: "a", text: "-- schedule: 1m\n-- description: d e f\nSELECT 1\n",
			want: KPI{Name: "a", SQL: "-- schedule: 1m\n-- description: d e f\nSELECT 1", Schedule: time.Minute, Description: "d e f"}},
		{name: "no_header", text: "SELECT 1", want: KPI{Name: "no_header", SQL: "SELECT 1", Schedule: DefaultSchedule}},
		{name: "plain-comment", text: "-- Orders: all of them\n-- schedule: 30s\nSELECT 1",
			want: KPI{Name: "plain-comment", SQL: "-- Orders: all of them\n-- schedule: 30s\nSELECT 1", Schedule: 30 * time.Second}},
		{name: "after_sql", text: "SELECT 1\n-- schedule: 1m", want: KPI{Name: "after_sql", SQL: "SELECT 1\n-- schedule: 1m", Schedule: DefaultSchedule}},
		{name: "bad", text: "-- schedule: often\nSELECT 1", err: "schedule"},
		{name: "fast", text: "-- schedule: 10ms\nSELECT 1", err: "at least 1s"},
		{name: "other", text: "-- note: 1m\nSELECT 1", want: KPI{Name: "other", SQL: "-- note: 1m\nSELECT 1", Schedule: DefaultSchedule}},
		{name: "empty", text: "-- schedule: 1m\n", err: "no SQL"},
		{name: "Bad Name", text: "SELECT 1", err: "kpi name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.name, tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if k := ResultKey("orders_per_hour", time.Date(2026, 3, 1, 10, 4, 5, 0, time.FixedZone("x", 3600))); k != "kpi/orders_per_hour/run=20260301T090405Z/result.parquet" {
		t.Errorf("ResultKey = %s", k)
	}
}

// TestExampleKPIs runs the shipped KPI files on a lake of the shop
// workload: each result equals PostgreSQL's answer to the same SQL, lands
// in the lake as Parquet, and is served over HTTP.
func TestExampleKPIs(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	s := shoptest.New(t, pg, "shop", loc.URL(), nil)
	pg.Exec(t, "shop", shoptest.Workload...)
	// recent orders, so the last-48-hours KPI has rows
	pg.Exec(t, "shop", `INSERT INTO orders (customer_id, amount, created_at) SELECT 1 + g % 5, g, now() - g * interval '3 hours' FROM generate_series(1, 20) g`)
	s.CatchUp(t)
	e, err := query.Open(context.Background(), s.Cat, query.Options{Lake: loc})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	bucket, err := lake.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(e, Options{Dir: "../../kpis", Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.KPIs()) < 3 {
		t.Fatalf("%d example KPIs", len(r.KPIs()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	mux := http.NewServeMux()
	r.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// the shop KPIs; the others (such as fulfilment, over the demo's
	// payments and shipping services) are only loaded here
	shopKPIs := map[string]bool{"orders_per_hour": true, "revenue_per_day": true, "open_orders_by_status": true, "revenue_by_city": true}
	for _, k := range r.KPIs() {
		if !shopKPIs[k.Name] {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			run := waitRun(t, r, k.Name)
			if run.Err != nil {
				t.Fatal(run.Err)
			}
			want := shoptest.PGRows(t, s.URL, k.SQL)
			got := rows(run.Result)
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("lake:\n%v\npostgres:\n%v", got, want)
			}
			if len(want) == 0 {
				t.Errorf("postgres has no rows: the test data misses this KPI")
			}
			// the Parquet result in the lake
			rc, err := bucket.Get(context.Background(), run.Key)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			pf, err := file.NewParquetReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if n := pf.NumRows(); n != run.Result.Rows {
				t.Errorf("parquet has %d rows, result %d", n, run.Result.Rows)
			}
			if pf.MetaData().KeyValueMetadata().FindValue(query.FreshnessKey) == nil {
				t.Errorf("parquet lacks %s", query.FreshnessKey)
			}
			// over HTTP
			resp, err := http.Get(srv.URL + "/v1/kpis/" + k.Name + "?format=csv")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
				!strings.Contains(resp.Header.Get(query.FreshnessHTTPHeader), "shop lsn=") {
				t.Errorf("GET: %d %v\n%s", resp.StatusCode, resp.Header, body)
			}
			if lines := strings.Count(string(body), "\n"); lines != int(run.Result.Rows)+1 {
				t.Errorf("csv has %d lines for %d rows", lines, run.Result.Rows)
			}
		})
	}
	resp, err := http.Get(srv.URL + "/v1/kpis")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		KPIs []status `json:"kpis"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.KPIs) != len(r.KPIs()) {
		t.Errorf("GET /v1/kpis = %+v", list)
	}
	resp, err = http.Get(srv.URL + "/v1/kpis/nope")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("unknown kpi: %d", resp.StatusCode)
		}
	}
	// run on request
	resp, err = http.Post(srv.URL+"/v1/kpis/revenue_by_city/run", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST run: %d", resp.StatusCode)
	}
}

func TestFailedRunKeepsLastResult(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k.sql"), []byte("-- schedule: 1h\nSELECT 1 AS one"), 0o644)
	q := &flaky{}
	r, err := New(q, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RunKPI(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	q.fail = true
	if _, err := r.RunKPI(context.Background(), "k"); err == nil {
		t.Fatal("no error")
	}
	run, _ := r.Latest("k")
	if run.Result == nil || run.Err == nil {
		t.Errorf("latest = %+v, want the old result and the new error", run)
	}
}

type flaky struct{ fail bool }

func (f *flaky) Query(ctx context.Context, sql string, args ...any) (*query.Result, error) {
	if f.fail {
		return nil, io.ErrUnexpectedEOF
	}
	return &query.Result{}, nil
}

func waitRun(t *testing.T, r *Runner, name string) *Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if run, ok := r.Latest(name); ok {
			return run
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kpi %s did not run", name)
	return nil
}

func rows(r *query.Result) [][]string {
	var out [][]string
	for _, rec := range r.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				v, ok := query.Text(rec.Column(c), i)
				if !ok {
					v = "NULL"
				}
				row[c] = v
			}
			out = append(out, row)
		}
	}
	return out
}
