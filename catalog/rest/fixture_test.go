package rest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/lakeformat"
)

// lakeFixture is a lake in a temporary folder fed by a real PostgreSQL.
type lakeFixture struct {
	pg      *pgtest.Cluster
	lakeDir string
	loc     lake.Location
	bucket  lake.Bucket
	cat     *catalog.Catalog
	urls    map[string]string // source database URLs, by name
}

func newLake(t *testing.T) *lakeFixture {
	t.Helper()
	f := &lakeFixture{pg: pgtest.Start(t), lakeDir: filepath.Join(t.TempDir(), "lake")}
	var err error
	if f.loc, err = lake.Parse(f.lakeDir); err != nil {
		t.Fatal(err)
	}
	if f.bucket, err = lake.Open(context.Background(), f.loc); err != nil {
		t.Fatal(err)
	}
	// the catalog lives inside the lake folder, as cdclake puts it
	f.cat, err = catalog.Open(context.Background(), catalog.Options{URL: filepath.Join(f.lakeDir, "catalog.db"), Warehouse: f.loc.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cat.Close() })
	return f
}

// source creates database db with the given statements and starts its
// replication (first ingest run: creates the slot, nothing to copy).
func (f *lakeFixture) source(t *testing.T, db string, ddl ...string) string {
	t.Helper()
	url := f.pg.CreateDB(t, db)
	if f.urls == nil {
		f.urls = map[string]string{}
	}
	f.urls[db] = url
	f.pg.Exec(t, db, ddl...)
	if err := f.ingest(url); err != nil {
		t.Fatalf("first ingest of %s: %v", db, err)
	}
	return url
}

// ingest drains everything committed so far into the lake.
func (f *lakeFixture) ingest(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return ingest.Run(ctx, f.cat, ingest.Options{Source: url, CatchUp: true, Snapshot: "never",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time // zero: the real time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// server starts the API on the lake with o (Catalog, Bucket and Location
// filled in).
func (f *lakeFixture) server(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	o.Catalog, o.Bucket, o.Location = f.cat, f.bucket, f.loc
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

// get fetches path and decodes the JSON answer into v (when not nil),
// failing the test unless the status is want.
func get(t *testing.T, ts *httptest.Server, token, path string, want int, v any) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return body
}

// changeRow is one changelog row as the tests check it.
type changeRow struct {
	lsn      int64
	commitTS time.Time
}

// scanChanges reads a changelog table's rows through the SQL catalog.
func scanChanges(t *testing.T, cat *catalog.Catalog, id []string) []changeRow {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.Iceberg().LoadTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return changeRows(t, at)
}

func changeRows(t *testing.T, at arrow.Table) []changeRow {
	t.Helper()
	var out []changeRow
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		lsns := rec.Column(rec.Schema().FieldIndices(lakeformat.ColLSN)[0]).(*array.Int64)
		tss := rec.Column(rec.Schema().FieldIndices(lakeformat.ColCommitTS)[0]).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, changeRow{lsn: lsns.Value(i), commitTS: time.UnixMicro(int64(tss.Value(i))).UTC()})
		}
	}
	return out
}

// underRoot reports whether an object URL names an object inside the lake
// folder (after decoding and cleaning its path).
func underRoot(root, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == ".." {
			return false
		}
	}
	p := path.Clean(u.Path)
	return strings.HasPrefix(p, filepath.ToSlash(root)+"/")
}

// download fetches an object through the API.
func download(t *testing.T, ts *httptest.Server, token, path string) []byte {
	t.Helper()
	return get(t, ts, token, path, http.StatusOK, nil)
}
