package dashboard

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lake"
)

//go:embed assets
var assets embed.FS

// AssetsPrefix is the path the page's scripts and styles are served under.
const AssetsPrefix = "/ui/"

// Public reports whether path is part of the static page, which holds no
// data and must load without the token so its login field can ask for it.
func Public(path string) bool { return path == "/" || strings.HasPrefix(path, AssetsPrefix) }

// Options configure a Server. The zero value of every field means its
// default.
type Options struct {
	// Catalog gives the changelogs' snapshots for GET /v1/throughput; nil
	// leaves the route out.
	Catalog *catalog.Catalog
	// Bucket reads the KPI results for GET /v1/kpis/{name}/history; nil
	// leaves the route out.
	Bucket lake.BucketReader
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the dashboard page and its API routes.
type Server struct {
	o   Options
	log *slog.Logger

	mu         sync.Mutex
	results    map[string]*kpiRun // KPI results by lake key (immutable objects)
	throughput *throughputCache
}

// New returns a dashboard server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o, log: o.Logger.With("component", "dashboard"), results: map[string]*kpiRun{}}
}

// Register adds the routes to mux:
//
//	GET /                       the page
//	GET /ui/...                 its scripts and styles
//	GET /v1/kpis/{name}/history stored results of a KPI, oldest first
//	GET /v1/throughput          rows written per source over time
func (s *Server) Register(mux *http.ServeMux) {
	sub, _ := fs.Sub(assets, "assets")
	files := http.StripPrefix(strings.TrimSuffix(AssetsPrefix, "/"), http.FileServerFS(sub))
	mux.Handle("GET /{$}", page(sub))
	mux.Handle("GET "+AssetsPrefix, static(files))
	if s.o.Bucket != nil {
		mux.HandleFunc("GET /v1/kpis/{name}/history", s.kpiHistory)
	}
	if s.o.Catalog != nil {
		mux.HandleFunc("GET /v1/throughput", s.serveThroughput)
	}
}

// csp keeps the page to its own scripts, styles and API.
const csp = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

func static(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func page(sub fs.FS) http.Handler {
	return static(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	}))
}
