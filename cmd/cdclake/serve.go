package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/catalog/rest"
	"github.com/cdclake/cdclake/dashboard"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
	"github.com/cdclake/cdclake/query/kpi"
	"github.com/cdclake/cdclake/query/pgwire"
)

// serveCommand serves the lake: SQL and KPIs over HTTP, SQL over the
// PostgreSQL wire protocol, and the routes other files mount.
type serveCommand struct {
	// status, when set, reports what the process running the sources
	// knows (cdclake run: when each is caught up); cdclake serve alone
	// knows only the catalog.
	status func(ctx context.Context, src catalog.Source) (rest.SourceStatus, error)
}

func init() { commands["serve"] = func() command { return &serveCommand{} } }

// serveDeps is what a mounted route may use.
type serveDeps struct {
	// Ctx ends when serve stops; background work of a mount runs under it.
	Ctx       context.Context
	ChecksDir string // folder of check .sql files, "" for none
	Catalog   *catalog.Catalog
	Bucket    lake.Bucket
	Lake      lake.Location
	Engine    *query.Engine
	Logger    *slog.Logger
	// SourceStatus is the catalog API's rest.Options.SourceStatus (nil:
	// catalog facts only).
	SourceStatus func(ctx context.Context, src catalog.Source) (rest.SourceStatus, error)
}

// serveMounts add routes to the cdclake serve mux, each from an init
// function in its own file (the /v1/ catalog routes, /iceberg/, /metrics,
// /healthz). Every route but /healthz is behind the bearer token.
var serveMounts []func(mux *http.ServeMux, d serveDeps) error

// tokenEnv names the environment variable holding the API token.
const tokenEnv = "CDCLAKE_TOKEN"

func (c *serveCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var lf lakeFlags
	lf.register(fs)
	var qf engineFlags
	qf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen address")
	pgAddr := fs.String("pg-addr", "127.0.0.1:5433", `PostgreSQL wire protocol listen address ("" disables it)`)
	pgCert := fs.String("pg-tls-cert", "", "PEM certificate (chain) for TLS on the PostgreSQL wire protocol; with --pg-tls-key, clients must use TLS (sslmode=require or verify-full)")
	pgKey := fs.String("pg-tls-key", "", "PEM private key of --pg-tls-cert")
	kpiDir := fs.String("kpis", "./kpis", `folder of KPI .sql files ("" disables KPIs)`)
	checksDir := fs.String("checks", "./checks", `folder of check .sql files ("" disables checks)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if (*pgCert == "") != (*pgKey == "") {
		return errors.New("--pg-tls-cert and --pg-tls-key go together")
	}
	var pgTLS *tls.Config
	if *pgCert != "" {
		var err error
		if pgTLS, err = pgwire.LoadTLS(*pgCert, *pgKey); err != nil {
			return err
		}
	}
	log := slog.Default().With("component", "serve")
	token := os.Getenv(tokenEnv)
	if token == "" && !loopback(*addr, *pgAddr) {
		log.Warn("serving beyond loopback without " + tokenEnv + ": anyone who can connect can query the lake")
	}
	eng, cat, bucket, err := openEngine(ctx, lf, qf)
	if err != nil {
		return err
	}
	defer cat.Close()
	defer eng.Close()
	loc, _ := lake.Parse(lf.lake)

	mux := http.NewServeMux()
	mux.Handle("POST /v1/query", query.Handler(eng, slog.Default()))
	var runner *kpi.Runner
	if *kpiDir != "" {
		if _, err := os.Stat(*kpiDir); err == nil {
			if runner, err = kpi.New(eng, kpi.Options{Dir: *kpiDir, Bucket: bucket}); err != nil {
				return err
			}
			runner.Register(mux)
		} else {
			log.Info("no KPI folder; KPIs are off", "dir", *kpiDir)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	deps := serveDeps{Ctx: gctx, ChecksDir: *checksDir, Catalog: cat, Bucket: bucket, Lake: loc, Engine: eng, Logger: slog.Default(), SourceStatus: c.status}
	for _, mount := range serveMounts {
		if err := mount(mux, deps); err != nil {
			return err
		}
	}
	srv := &http.Server{Addr: *addr, Handler: requireToken(token, mux), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	g.Go(func() error {
		log.Info("serving http", "addr", ln.Addr().String(), "token", token != "")
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if *pgAddr != "" {
		pg := pgwire.New(eng, pgwire.Options{Addr: *pgAddr, Password: token, TLS: pgTLS})
		g.Go(func() error { return pg.Run(gctx) })
	}
	if runner != nil {
		g.Go(func() error { return runner.Run(gctx) })
	}
	return g.Wait()
}

// requireToken guards every route but /healthz with "Authorization:
// Bearer <token>" when token is set. Tokens are compared in constant time
// (of their SHA-256, so the length does not show) and never logged.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(got))
		if r.URL.Path != "/healthz" && !dashboard.Public(r.URL.Path) && (!strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdclake"`)
			query.WriteError(w, http.StatusUnauthorized, "NotAuthorizedException", errors.New("missing or wrong bearer token ("+tokenEnv+")"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopback reports whether every non-empty address listens on loopback only.
func loopback(addrs ...string) bool {
	for _, a := range addrs {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}
