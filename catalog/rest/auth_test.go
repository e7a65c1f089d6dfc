package rest

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// routePaths turns the server's route patterns into concrete paths on the
// shop lake.
func routePaths(t *testing.T, srv *Server, ts *httptest.Server) map[string]string {
	t.Helper()
	var parts struct{ Partitions []Partition }
	get(t, ts, testToken, "/v1/tables/shop/public/orders/partitions", http.StatusOK, &parts)
	var m Manifest
	get(t, ts, testToken, parts.Partitions[0].Manifest, http.StatusOK, &m)
	r := strings.NewReplacer(
		"{source}", "shop", "{schema}", "public", "{table}", "orders",
		"{hour}", parts.Partitions[0].Hour.Format(HourFormat),
		"{key...}", strings.TrimPrefix(*m.Files[0].Download, "/v1/objects/"),
		"{ns}", "shop%1Fpublic")
	out := map[string]string{}
	for _, p := range srv.Patterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			method, path = "GET", p+"v1/no-such-route"
		}
		if method != "GET" {
			continue
		}
		if strings.HasPrefix(path, "/iceberg/") {
			path = strings.Replace(path, "{table}", "orders__changes", 1)
		}
		out[p] = r.Replace(path)
	}
	return out
}

const testToken = "t0k-3n/with+chars"

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAuth(t *testing.T) {
	f := shopLake(t)
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := Options{Catalog: f.cat, Bucket: f.bucket, Location: f.loc, Token: testToken, Logger: log}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	paths := routePaths(t, srv, ts)
	if len(paths) < 15 {
		t.Fatalf("only %d routes: %v", len(paths), paths)
	}
	o.Token = ""
	open, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	tsOpen := httptest.NewServer(open)
	defer tsOpen.Close()

	cases := []struct {
		name   string
		ts     *httptest.Server
		header string
		want   int // for every route but /healthz
	}{
		{"token on, no header", ts, "", http.StatusUnauthorized},
		{"token on, wrong token", ts, "Bearer nope", http.StatusUnauthorized},
		{"token on, token prefix", ts, "Bearer " + testToken[:5], http.StatusUnauthorized},
		{"token on, basic scheme", ts, "Basic " + testToken, http.StatusUnauthorized},
		{"token on, right token", ts, "Bearer " + testToken, http.StatusOK},
		{"token on, lower-case scheme", ts, "bearer " + testToken, http.StatusOK},
		{"token off, no header", tsOpen, "", http.StatusOK},
		{"token off, any header", tsOpen, "Bearer whatever", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for pattern, path := range paths {
				req, _ := http.NewRequest(http.MethodGet, c.ts.URL+path, nil)
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := c.want
				if pattern == "GET /healthz" {
					want = http.StatusOK
				}
				if pattern == "/iceberg/" && want == http.StatusOK {
					want = http.StatusNotFound // the catch-all has no page of its own
				}
				if resp.StatusCode != want {
					t.Errorf("%s %s: %d, want %d", pattern, path, resp.StatusCode, want)
				}
				if want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", path)
				}
			}
		})
	}
	t.Run("token in the query string does not count", func(t *testing.T) {
		get(t, ts, "", "/v1/sources?token="+testToken, http.StatusUnauthorized, nil)
		get(t, ts, "", "/v1/sources?access_token="+testToken, http.StatusUnauthorized, nil)
	})
	if !strings.Contains(logs.String(), `"path":"/v1/sources"`) {
		t.Errorf("requests were not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), testToken) || strings.Contains(logs.String(), "t0k-3n") {
		t.Errorf("the token shows in the log")
	}
}

func TestCORS(t *testing.T) {
	f := shopLake(t)
	origin := "https://dash.example"
	for _, c := range []struct {
		name    string
		origins []string
		want    string
	}{
		{"off by default", nil, ""},
		{"listed origin", []string{origin}, origin},
		{"other origin", []string{"https://other.example"}, ""},
		{"any origin", []string{"*"}, origin},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := f.server(t, Options{CORSOrigins: c.origins, Token: testToken})
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/sources", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != c.want {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, c.want)
			}
			req, _ = http.NewRequest(http.MethodOptions, ts.URL+"/v1/sources", nil)
			req.Header.Set("Origin", origin)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if preflight := resp.StatusCode == http.StatusNoContent; preflight != (len(c.origins) > 0) {
				t.Errorf("preflight answered %d", resp.StatusCode)
			}
		})
	}
}

// TestRegister mounts the service on a mux that already serves the query
// and KPI routes of cdclake serve, twice on one metrics registry.
func TestRegister(t *testing.T) {
	f := newLake(t)
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	lead := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, p := range []string{"POST /v1/query", "GET /v1/kpis", "GET /v1/kpis/{name}", "POST /v1/kpis/{name}/run"} {
		mux.Handle(p, lead)
	}
	for i := 0; i < 2; i++ {
		srv, err := New(Options{Catalog: f.cat, Registerer: reg, CORSOrigins: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			srv.Register(mux)
		}
	}
	ts := httptest.NewServer(mux)
	defer ts.Close()
	get(t, ts, "", "/v1/sources", http.StatusOK, nil)
	get(t, ts, "", "/v1/kpis", http.StatusTeapot, nil)
	resp, err := http.Post(ts.URL+"/v1/query", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("POST /v1/query reached %d", resp.StatusCode)
	}
	if body := string(get(t, ts, "", "/metrics", http.StatusOK, nil)); !strings.Contains(body, "cdclake_http_requests_total") {
		t.Errorf("metrics: %s", body)
	}
}
