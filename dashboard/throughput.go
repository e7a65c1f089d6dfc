package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
	"github.com/cdclake/cdclake/query"
)

// Throughput is the answer of GET /v1/throughput: rows ingest appended to
// each source's changelogs per step, from Since to Until.
type Throughput struct {
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	StepSeconds int       `json:"step_seconds"`
	// Times are the steps' starts.
	Times   []time.Time        `json:"times"`
	Sources []SourceThroughput `json:"sources"`
}

// SourceThroughput is one source's rows per step (as Throughput.Times).
type SourceThroughput struct {
	Source        string    `json:"source"`
	Rows          []int64   `json:"rows"`
	RowsPerSecond []float64 `json:"rows_per_second"`
}

// throughputCache keeps the last answer a few seconds: every open page
// polls it, and it reads the metadata of every changelog.
type throughputCache struct {
	key string
	at  time.Time
	t   Throughput
}

const throughputTTL = 5 * time.Second

// serveThroughput serves GET /v1/throughput?window=1h&step=1m (window up
// to 24h, at most 1440 steps).
func (s *Server) serveThroughput(w http.ResponseWriter, r *http.Request) {
	window, step, err := throughputParams(r)
	if err != nil {
		query.WriteError(w, http.StatusBadRequest, "bad_request", err)
		return
	}
	now := s.o.Now()
	key := window.String() + "/" + step.String()
	s.mu.Lock()
	c := s.throughput
	s.mu.Unlock()
	if c != nil && c.key == key && now.Sub(c.at) < throughputTTL {
		writeJSON(w, c.t)
		return
	}
	t, err := throughput(r.Context(), s.o.Catalog, now, window, step)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	s.throughput = &throughputCache{key: key, at: now, t: t}
	s.mu.Unlock()
	writeJSON(w, t)
}

func throughputParams(r *http.Request) (window, step time.Duration, err error) {
	window, step = time.Hour, time.Minute
	q := r.URL.Query()
	for name, d := range map[string]*time.Duration{"window": &window, "step": &step} {
		if v := q.Get(name); v != "" {
			if *d, err = time.ParseDuration(v); err != nil || *d < time.Second {
				return 0, 0, fmt.Errorf("%s must be a duration of at least 1s such as 1h or 30s", name)
			}
		}
	}
	if window > 24*time.Hour || window/step > 1440 || step > window {
		return 0, 0, fmt.Errorf("window must be at most 24h, in at most 1440 steps")
	}
	return window, step, nil
}

// throughput sums the rows of the append snapshots of every changelog per
// step of the window ending now (steps aligned to the step size).
func throughput(ctx context.Context, cat *catalog.Catalog, now time.Time, window, step time.Duration) (Throughput, error) {
	until := now.UTC().Truncate(step).Add(step)
	n := int(window / step)
	t := Throughput{Since: until.Add(-time.Duration(n) * step), Until: until, StepSeconds: int(step.Seconds()), Sources: []SourceThroughput{}}
	for i := range n {
		t.Times = append(t.Times, t.Since.Add(time.Duration(i)*step))
	}
	ice := cat.Iceberg()
	nss, err := ice.ListNamespaces(ctx, nil)
	if err != nil {
		return t, fmt.Errorf("list namespaces: %w", err)
	}
	bySource := map[string]*SourceThroughput{}
	sources, err := cat.Sources(ctx)
	if err != nil {
		return t, err
	}
	for _, src := range sources {
		t.Sources = append(t.Sources, SourceThroughput{Source: src.Name, Rows: make([]int64, n), RowsPerSecond: make([]float64, n)})
	}
	for i := range t.Sources {
		bySource[t.Sources[i].Source] = &t.Sources[i]
	}
	for _, ns := range nss {
		if len(ns) != 2 || bySource[lakeformat.NamePart(ns[0])] == nil {
			continue
		}
		st := bySource[lakeformat.NamePart(ns[0])]
		for id, err := range ice.ListTables(ctx, ns) {
			if err != nil {
				return t, fmt.Errorf("list tables: %w", err)
			}
			if !strings.HasSuffix(id[len(id)-1], lakeformat.ChangesSuffix) {
				continue
			}
			tbl, err := ice.LoadTable(ctx, id)
			if err != nil {
				return t, fmt.Errorf("load %s: %w", strings.Join(id, "."), err)
			}
			for _, sn := range tbl.Metadata().Snapshots() {
				at := time.UnixMilli(sn.TimestampMs)
				if sn.Summary == nil || sn.Summary.Operation != table.OpAppend || at.Before(t.Since) || !at.Before(until) {
					continue
				}
				rows, _ := strconv.ParseInt(sn.Summary.Properties["added-records"], 10, 64)
				st.Rows[int(at.Sub(t.Since)/step)] += rows
			}
		}
	}
	for i := range t.Sources {
		for j, rows := range t.Sources[i].Rows {
			t.Sources[i].RowsPerSecond[j] = float64(rows) / step.Seconds()
		}
	}
	return t, nil
}
