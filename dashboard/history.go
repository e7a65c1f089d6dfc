package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// History limits: runs per answer (?limit=, default 60) and rows kept per
// run; older results stay in the lake for the warehouse.
const (
	defaultRuns = 60
	maxRuns     = 1000
	maxRunRows  = 500
	maxCached   = 4096
)

var kpiName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// kpiRun is one stored KPI result in the history answer.
type kpiRun struct {
	RunAt     time.Time         `json:"run_at"`
	Key       string            `json:"key"`
	Columns   json.RawMessage   `json:"columns"`
	Rows      []json.RawMessage `json:"rows"`
	RowCount  int64             `json:"row_count"`
	Truncated bool              `json:"truncated"`
}

// kpiHistory serves GET /v1/kpis/{name}/history: the KPI's stored results
// under kpi/<name>/run=<time>/result.parquet, the latest ?limit= of them,
// oldest first. A name without results answers an empty list.
func (s *Server) kpiHistory(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !kpiName.MatchString(name) {
		query.WriteError(w, http.StatusNotFound, "not_found", fmt.Errorf("no such kpi: %q", name))
		return
	}
	limit := defaultRuns
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRuns {
			query.WriteError(w, http.StatusBadRequest, "bad_request", fmt.Errorf("limit must be between 1 and %d", maxRuns))
			return
		}
		limit = n
	}
	var keys []string
	err := s.o.Bucket.Iter(r.Context(), "kpi/"+name+"/", func(key string) error {
		if _, ok := runTime(key); ok {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, fmt.Errorf("list kpi results: %w", err))
		return
	}
	keys = keys[max(len(keys)-limit, 0):]
	runs := []*kpiRun{}
	for _, key := range keys {
		run, err := s.kpiResult(r.Context(), key)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		runs = append(runs, run)
	}
	writeJSON(w, map[string]any{"name": name, "runs": runs})
}

// runTime parses the run time of a result key kpi/<name>/run=<t>/result.parquet.
func runTime(key string) (time.Time, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[3] != "result.parquet" || !strings.HasPrefix(parts[2], "run=") {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", strings.TrimPrefix(parts[2], "run="))
	return t, err == nil
}

// kpiResult reads one stored result, from memory when it was read before.
func (s *Server) kpiResult(ctx context.Context, key string) (*kpiRun, error) {
	s.mu.Lock()
	run := s.results[key]
	s.mu.Unlock()
	if run != nil {
		return run, nil
	}
	at, _ := runTime(key)
	run = &kpiRun{RunAt: at, Key: key}
	if err := readResult(ctx, s.o.Bucket, key, run); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.results) >= maxCached {
		clear(s.results)
	}
	s.results[key] = run
	s.mu.Unlock()
	return run, nil
}

// readResult decodes a result Parquet file into run's columns and rows,
// in the JSON form of POST /v1/query.
func readResult(ctx context.Context, b lake.BucketReader, key string, run *kpiRun) error {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read kpi result: %w", err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("read kpi result: %w", err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("open kpi result %s: %w", key, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: maxRunRows}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("open kpi result %s: %w", key, err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		return fmt.Errorf("decode kpi result %s: %w", key, err)
	}
	defer tbl.Release()
	res := &query.Result{Schema: tbl.Schema()}
	tr := array.NewTableReader(tbl, maxRunRows)
	defer tr.Release()
	if tr.Next() {
		rec := tr.RecordBatch()
		rec.Retain()
		res.Records, res.Rows = []arrow.RecordBatch{rec}, rec.NumRows()
	}
	defer res.Release()
	var buf bytes.Buffer
	if err := query.WriteJSON(&buf, res); err != nil {
		return err
	}
	var doc struct {
		Columns json.RawMessage   `json:"columns"`
		Rows    []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		return fmt.Errorf("decode kpi result %s: %w", key, err)
	}
	run.Columns, run.Rows, run.RowCount = doc.Columns, doc.Rows, tbl.NumRows()
	if run.Rows == nil {
		run.Rows = []json.RawMessage{}
	}
	run.Truncated = run.RowCount > int64(len(run.Rows))
	return nil
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	s.log.Error("request failed", "path", r.URL.Path, "err", err)
	query.WriteError(w, http.StatusInternalServerError, "internal", err)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
