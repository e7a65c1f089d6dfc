package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
	"github.com/cdclake/cdclake/query/kpi"
)

func TestPublic(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/ui/app.js": true, "/ui/uPlot.iife.min.js": true,
		"/v1/sources": false, "/metrics": false, "/ui": false, "/index.html": false,
	} {
		if Public(path) != want {
			t.Errorf("Public(%q) != %v", path, want)
		}
	}
}

func TestPage(t *testing.T) {
	mux := http.NewServeMux()
	New(Options{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{
		"/":                     "text/html",
		"/ui/app.js":            "text/javascript",
		"/ui/style.css":         "text/css",
		"/ui/uPlot.iife.min.js": "text/javascript",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	for _, path := range []string{"/ui/nope.js", "/v1/throughput", "/v1/kpis/a/history"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404 (no such file, or no catalog or bucket)", path, resp.StatusCode)
		}
	}
}

// TestKPIHistory stores three results of a KPI the way the KPI runner
// does and reads them back, oldest first, limited, with rows truncated.
func TestKPIHistory(t *testing.T) {
	ctx := context.Background()
	loc, err := lake.Parse(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := lake.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, rows := range []int{2, 3, maxRunRows + 1} {
		var buf bytes.Buffer
		if err := query.WriteParquet(&buf, result(rows)); err != nil {
			t.Fatal(err)
		}
		key := kpi.ResultKey("k", start.Add(time.Duration(i)*time.Minute))
		if err := bucket.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatal(err)
		}
	}
	bucket.Put(ctx, "kpi/k/notes.txt", strings.NewReader("x"), 1)
	mux := http.NewServeMux()
	New(Options{Bucket: bucket}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var doc struct {
		Name string
		Runs []kpiRun
	}
	getJSON(t, srv.URL+"/v1/kpis/k/history?limit=2", 200, &doc)
	if len(doc.Runs) != 2 {
		t.Fatalf("%d runs", len(doc.Runs))
	}
	r0, r1 := doc.Runs[0], doc.Runs[1]
	if !r0.RunAt.Equal(start.Add(time.Minute)) || r0.RowCount != 3 || len(r0.Rows) != 3 || r0.Truncated ||
		string(r0.Rows[2]) != `["1970-01-01T02:00:00Z",20]` || !strings.Contains(string(r0.Columns), `{"name":"hour","type":"timestamptz"}`) {
		t.Errorf("run 0 = %+v, rows %s, columns %s", r0, r0.Rows, r0.Columns)
	}
	if r1.RowCount != maxRunRows+1 || len(r1.Rows) != maxRunRows || !r1.Truncated {
		t.Errorf("run 1: %d rows of %d, truncated %v", len(r1.Rows), r1.RowCount, r1.Truncated)
	}
	getJSON(t, srv.URL+"/v1/kpis/none/history", 200, &doc)
	if len(doc.Runs) != 0 {
		t.Errorf("a KPI without results has %d runs", len(doc.Runs))
	}
	getJSON(t, srv.URL+"/v1/kpis/k/history?limit=0", 400, nil)
	getJSON(t, srv.URL+"/v1/kpis/..%2Fx/history", 404, nil)
}

func TestRunTime(t *testing.T) {
	for key, ok := range map[string]bool{
		"kpi/k/run=20260301T100000Z/result.parquet":   true,
		"kpi/k/run=20260301T100000Z/other.parquet":    false,
		"kpi/k/run=yesterday/result.parquet":          false,
		"kpi/k/x/run=20260301T100000Z/result.parquet": false,
	} {
		if _, got := runTime(key); got != ok {
			t.Errorf("runTime(%q) ok = %v", key, got)
		}
	}
}

func TestThroughputParams(t *testing.T) {
	for q, ok := range map[string]bool{
		"": true, "?window=24h&step=1m": true, "?window=10m&step=10s": true,
		"?window=25h": false, "?window=1h&step=1s": false, "?step=2h": false, "?window=often": false, "?step=0s": false,
	} {
		_, _, err := throughputParams(httptest.NewRequest("GET", "/v1/throughput"+q, nil))
		if (err == nil) != ok {
			t.Errorf("%q: %v", q, err)
		}
	}
}

// result is a KPI result of n hours, with n*10 orders in the last.
func result(n int) *query.Result {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "hour", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "orders", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i) * 3600e6))
		b.Field(1).(*array.Int64Builder).Append(int64(i) * 10)
	}
	rec := b.NewRecordBatch()
	return &query.Result{Schema: sc, Records: []arrow.RecordBatch{rec}, Rows: int64(n)}
}

func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
}
