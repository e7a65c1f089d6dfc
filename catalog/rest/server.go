package rest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves the catalog API. It is an http.Handler; Register mounts
// its routes on another mux instead.
type Server struct {
	o       Options
	reader  *Reader
	metrics *httpMetrics
	routes  []route
	mux     *http.ServeMux
}

type route struct {
	pattern string
	handler http.HandlerFunc
	public  bool // served without the token
}

// New returns the catalog service.
func New(o Options) (*Server, error) {
	if o.Catalog == nil {
		return nil, errors.New("catalog service: no catalog given")
	}
	o = o.withDefaults()
	if o.Registerer == nil && o.Gatherer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
		o.Registerer, o.Gatherer = reg, reg
	}
	if o.Gatherer == nil {
		g, ok := o.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("catalog service: Registerer is not a Gatherer: set Gatherer too")
		}
		o.Gatherer = g
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry() // counted, not served
	}
	s := &Server{o: o, reader: newReader(o)}
	var err error
	if s.metrics, err = newHTTPMetrics(o.Registerer); err != nil {
		return nil, err
	}
	if _, err := register(o.Registerer, prometheus.Collector(&catalogCollector{r: s.reader})); err != nil {
		return nil, err
	}
	s.routes = []route{
		{pattern: "GET /healthz", handler: s.healthz, public: true},
		{pattern: "GET /readyz", handler: s.readyz},
		{pattern: "GET /metrics", handler: promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}).ServeHTTP},

		{pattern: "GET /v1/sources", handler: s.sources},
		{pattern: "GET /v1/sources/{source}", handler: s.source},
		{pattern: "GET /v1/tables", handler: s.tables},
		{pattern: "GET /v1/tables/{source}/{schema}/{table}", handler: s.table},
		{pattern: "GET /v1/tables/{source}/{schema}/{table}/schema", handler: s.schema},
		{pattern: "GET /v1/tables/{source}/{schema}/{table}/snapshots", handler: s.snapshots},
		{pattern: "GET /v1/tables/{source}/{schema}/{table}/partitions", handler: s.partitions},
		{pattern: "GET /v1/tables/{source}/{schema}/{table}/partitions/{hour}", handler: s.manifest},
		{pattern: "GET /v1/objects/{key...}", handler: s.object},

		{pattern: "GET /iceberg/v1/config", handler: s.iceConfig},
		{pattern: "GET /iceberg/v1/namespaces", handler: s.iceNamespaces},
		{pattern: "GET /iceberg/v1/namespaces/{ns}", handler: s.iceNamespace},
		{pattern: "GET /iceberg/v1/namespaces/{ns}/tables", handler: s.iceTables},
		{pattern: "GET /iceberg/v1/namespaces/{ns}/tables/{table}", handler: s.iceTable},
		{pattern: "/iceberg/", handler: s.iceOther},
	}
	if len(o.CORSOrigins) > 0 {
		s.routes = append(s.routes,
			route{pattern: "OPTIONS /v1/", handler: s.preflight, public: true},
			route{pattern: "OPTIONS /iceberg/", handler: s.preflight, public: true})
	}
	s.mux = http.NewServeMux()
	s.Register(s.mux)
	return s, nil
}

// Register mounts the service's routes on mux, for a process that serves
// more than the catalog API on one listener.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes {
		var h http.Handler = rt.handler
		if !rt.public {
			h = RequireToken(s.o.Token, h)
		}
		h = s.cors(h)
		mux.Handle(rt.pattern, s.metrics.instrument(rt.pattern, s.o.Logger, h))
	}
}

// ServeHTTP serves the catalog API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Reader returns the service's reader, for in-process callers.
func (s *Server) Reader() *Reader { return s.reader }

// Patterns lists the route patterns the service registers.
func (s *Server) Patterns() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.pattern
	}
	return out
}

// RequireToken wraps h so that it answers 401 unless the request carries
// "Authorization: Bearer <token>". An empty token lets every request
// through. Tokens are compared in constant time (of their SHA-256, so
// their length does not show either).
func RequireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(got))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdclake"`)
			writeError(w, r, http.StatusUnauthorized, "NotAuthorizedException", "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cors adds CORS headers for the configured origins; with none it does
// nothing.
func (s *Server) cors(h http.Handler) http.Handler {
	if len(s.o.CORSOrigins) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (slices.Contains(s.o.CORSOrigins, "*") || slices.Contains(s.o.CORSOrigins, origin)) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.o.Catalog.Sources(ctx); err != nil {
		s.o.Logger.Warn("not ready", "err", err)
		writeError(w, r, http.StatusServiceUnavailable, "ServiceUnavailableException", "catalog unreachable")
		return
	}
	writeJSON(w, map[string]string{"status": "ready"})
}

// errorBody is the error answer of both APIs: the Iceberg REST ErrorModel.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    int    `json:"code"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, r *http.Request, code int, typ, msg string) {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Code = msg, typ, code
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
