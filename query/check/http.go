package check

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/cdclake/cdclake/query"
)

// Register adds the check routes to mux:
//
//	GET  /v1/checks             every check with its state
//	GET  /v1/checks/{name}      one check's state
//	POST /v1/checks/{name}/run  evaluate now and return the new state
func (r *Runner) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/checks", r.serveList)
	mux.HandleFunc("GET /v1/checks/{name}", r.serveOne)
	mux.HandleFunc("POST /v1/checks/{name}/run", r.runNow)
}

// StateJSON is one check in the answers of the check routes.
type StateJSON struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schedule    string          `json:"schedule"`
	Threshold   int64           `json:"threshold"`
	Status      string          `json:"status"`
	Since       *time.Time      `json:"since"`
	Violations  int64           `json:"violations"`
	Sample      *Sample         `json:"sample"`
	LastRunAt   *time.Time      `json:"last_run_at"`
	LastElapsed int64           `json:"last_elapsed_ms"`
	LastError   string          `json:"last_error,omitempty"`
	Key         string          `json:"key,omitempty"`
	Freshness   json.RawMessage `json:"freshness"`
}

// JSON returns the state as the check routes answer it.
func (st State) JSON() StateJSON {
	t := func(v time.Time) *time.Time {
		if v.IsZero() {
			return nil
		}
		return &v
	}
	j := StateJSON{Name: st.Check.Name, Description: st.Check.Description, Schedule: st.Check.Schedule.String(),
		Threshold: st.Check.Threshold, Status: st.Status, Since: t(st.Since), Violations: st.Violations,
		Sample: st.Sample, LastRunAt: t(st.RunAt), LastElapsed: st.Elapsed.Milliseconds(), Key: st.Key,
		Freshness: json.RawMessage(query.FreshnessJSON(st.Freshness))}
	if st.Err != nil {
		j.LastError = st.Err.Error()
	}
	return j
}

func (r *Runner) serveList(w http.ResponseWriter, req *http.Request) {
	out := []StateJSON{}
	for _, st := range r.States() {
		out = append(out, st.JSON())
	}
	writeJSON(w, map[string]any{"checks": out})
}

func (r *Runner) serveOne(w http.ResponseWriter, req *http.Request) {
	st, err := r.State(req.PathValue("name"))
	if err != nil {
		query.WriteError(w, http.StatusNotFound, "not_found", err)
		return
	}
	writeJSON(w, st.JSON())
}

func (r *Runner) runNow(w http.ResponseWriter, req *http.Request) {
	st, err := r.RunCheck(req.Context(), req.PathValue("name"))
	if errors.Is(err, ErrNoSuchCheck) {
		query.WriteError(w, http.StatusNotFound, "not_found", err)
		return
	}
	// a failed run is a state like any other: its error is in last_error
	writeJSON(w, st.JSON())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
