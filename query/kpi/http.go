package kpi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cdclake/cdclake/query"
)

// Register adds the KPI routes to mux:
//
//	GET  /v1/kpis             the KPIs with their last run
//	GET  /v1/kpis/{name}      the latest result (format by ?format= or Accept)
//	POST /v1/kpis/{name}/run  evaluate now and return the result
func (r *Runner) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/kpis", r.serveList)
	mux.HandleFunc("GET /v1/kpis/{name}", r.get)
	mux.HandleFunc("POST /v1/kpis/{name}/run", r.runNow)
}

// status is one KPI in GET /v1/kpis.
type status struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schedule    string          `json:"schedule"`
	LastRunAt   *time.Time      `json:"last_run_at,omitempty"`
	LastElapsed int64           `json:"last_elapsed_ms,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
	ResultAt    *time.Time      `json:"result_at,omitempty"`
	Rows        int64           `json:"rows"`
	Key         string          `json:"key,omitempty"`
	Freshness   json.RawMessage `json:"freshness,omitempty"`
}

func (r *Runner) serveList(w http.ResponseWriter, req *http.Request) {
	out := []status{}
	for _, k := range r.list {
		s := status{Name: k.Name, Description: k.Description, Schedule: k.Schedule.String()}
		if run, ok := r.Latest(k.Name); ok {
			at := run.At
			s.LastRunAt, s.LastElapsed = &at, run.Elapsed.Milliseconds()
			if run.Err != nil {
				s.LastError = run.Err.Error()
			}
			if run.Result != nil {
				rat := run.ResultAt
				s.ResultAt, s.Rows, s.Key = &rat, run.Result.Rows, run.Key
				s.Freshness = json.RawMessage(query.FreshnessJSON(run.Result.Freshness))
			}
		}
		out = append(out, s)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"kpis": out})
}

func (r *Runner) get(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("name")
	if _, ok := r.kpis[name]; !ok {
		query.WriteError(w, http.StatusNotFound, "not_found", fmt.Errorf("%w: %s", ErrNoSuchKPI, name))
		return
	}
	run, ok := r.Latest(name)
	if !ok || run.Result == nil {
		err := errors.New("no result yet: the first run has not finished")
		if ok && run.Err != nil {
			err = fmt.Errorf("no result yet: %w", run.Err)
		}
		w.Header().Set("Retry-After", "5")
		query.WriteError(w, http.StatusServiceUnavailable, "pending", err)
		return
	}
	r.respond(w, req, run)
}

func (r *Runner) runNow(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("name")
	run, err := r.RunKPI(req.Context(), name)
	if errors.Is(err, ErrNoSuchKPI) {
		query.WriteError(w, http.StatusNotFound, "not_found", err)
		return
	}
	if err != nil {
		status, code := query.ErrorStatus(err)
		query.WriteError(w, status, code, err)
		return
	}
	r.respond(w, req, run)
}

// respond writes a run's result in the format the request asks for.
func (r *Runner) respond(w http.ResponseWriter, req *http.Request, run *Run) {
	format := req.URL.Query().Get("format")
	if format == "" {
		format = query.FormatJSON
		if f, ok := query.FormatFromAccept(req.Header.Get("Accept")); ok {
			format = f
		}
	}
	if query.ContentType(format) == "" {
		query.WriteError(w, http.StatusNotAcceptable, "format", fmt.Errorf("unknown format %q", format))
		return
	}
	w.Header().Set("Cdclake-Kpi-Run-At", run.ResultAt.Format(time.RFC3339))
	if run.Key != "" {
		w.Header().Set("Cdclake-Kpi-Key", run.Key)
	}
	if run.Err != nil {
		w.Header().Set("Cdclake-Kpi-Error", run.Err.Error())
	}
	query.WriteResult(w, run.Result, format, r.log)
}
