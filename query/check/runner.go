package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// Options configure a Runner. The zero value of every field means its
// default.
type Options struct {
	// Dir is the check folder (default ./checks).
	Dir string
	// Bucket receives each run's violating rows as Parquet under
	// ResultKey; nil keeps states in memory only.
	Bucket lake.Bucket
	// Catalog gives the rows of SourcesRelation (a *catalog.Catalog);
	// without it a check that reads the relation fails.
	Catalog SourceLister
	// Metrics receives the checks' states (NewMetrics); nil: no metrics.
	Metrics *Metrics
	// SampleRows is how many violating rows a State keeps (default 10).
	SampleRows int
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// SourceLister lists the sources' catalog records; *catalog.Catalog is one.
type SourceLister interface {
	Sources(ctx context.Context) ([]catalog.Source, error)
}

var _ SourceLister = (*catalog.Catalog)(nil)

// The statuses of a check.
const (
	StatusPending = "pending" // not run yet
	StatusOK      = "ok"      // at most Threshold violating rows
	StatusFailing = "failing" // more than Threshold violating rows
	StatusError   = "error"   // the latest run failed (see State.Err)
)

// State is a check's state after its latest run.
type State struct {
	Check Check
	// Status is one of the Status constants; Since is when the check
	// entered it.
	Status string
	Since  time.Time
	// Violations is how many rows the latest successful run returned;
	// Sample holds the first of them.
	Violations int64
	Sample     *Sample
	// RunAt is when the latest run started; Elapsed how long it took.
	RunAt   time.Time
	Elapsed time.Duration
	// Key is the lake key of the latest successful run's rows ("" when
	// not written).
	Key       string
	Freshness []query.Freshness
	// Err is the latest run's error, nil when it succeeded.
	Err error
}

// Sample is the first violating rows of a run, in the JSON form of
// POST /v1/query.
type Sample struct {
	Columns []Column          `json:"columns"`
	Rows    []json.RawMessage `json:"rows"`
}

// Column is one column of a Sample.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Runner evaluates checks on their schedules.
type Runner struct {
	q       query.Querier
	o       Options
	log     *slog.Logger
	metrics *Metrics
	checks  map[string]Check
	list    []Check

	mu     sync.Mutex
	states map[string]*State
	runs   map[string]*sync.Mutex // one run of a check at a time
}

// ErrNoSuchCheck is returned for a name no check file has.
var ErrNoSuchCheck = errors.New("no such check")

// New loads the checks of o.Dir.
func New(q query.Querier, o Options) (*Runner, error) {
	if o.Dir == "" {
		o.Dir = "./checks"
	}
	if o.SampleRows <= 0 {
		o.SampleRows = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	list, err := Load(o.Dir)
	if err != nil {
		return nil, err
	}
	r := &Runner{q: q, o: o, log: o.Logger.With("component", "check"), metrics: o.Metrics, checks: map[string]Check{}, list: list,
		states: map[string]*State{}, runs: map[string]*sync.Mutex{}}
	for _, c := range list {
		r.checks[c.Name] = c
		r.runs[c.Name] = &sync.Mutex{}
		r.states[c.Name] = &State{Check: c, Status: StatusPending}
		r.metrics.threshold(c)
	}
	return r, nil
}

// Checks lists the loaded checks, ordered by name.
func (r *Runner) Checks() []Check { return append([]Check{}, r.list...) }

// Run evaluates every check now and then on its schedule until ctx is
// cancelled. A failed run is logged and kept in the check's state.
func (r *Runner) Run(ctx context.Context) error {
	r.log.Info("running checks", "dir", r.o.Dir, "checks", len(r.list))
	var wg sync.WaitGroup
	for _, c := range r.list {
		wg.Go(func() {
			query.Every(ctx, c.Schedule, func() {
				if _, err := r.RunCheck(ctx, c.Name); err != nil && ctx.Err() == nil {
					r.log.Warn("check run failed", "check", c.Name, "err", err)
				}
			})
		})
	}
	wg.Wait()
	return nil
}

// RunCheck evaluates one check now, writes its violating rows into the
// lake and returns its new state.
func (r *Runner) RunCheck(ctx context.Context, name string) (State, error) {
	c, ok := r.checks[name]
	if !ok {
		return State{}, fmt.Errorf("%w: %s", ErrNoSuchCheck, name)
	}
	r.runs[name].Lock()
	defer r.runs[name].Unlock()
	at := r.o.Now().UTC()
	res, err := r.evaluate(ctx, c, at)
	var sample *Sample
	var key string
	if err == nil {
		defer res.Release()
		if sample, err = sampleOf(res, r.o.SampleRows); err == nil {
			key, err = r.write(ctx, c, res, at)
		}
	}

	r.mu.Lock()
	st := *r.states[name]
	st.RunAt, st.Elapsed, st.Err = at, r.o.Now().Sub(at), err
	status := StatusError
	if err == nil {
		status = StatusOK
		if res.Rows > c.Threshold {
			status = StatusFailing
		}
		st.Violations, st.Sample, st.Key, st.Freshness = res.Rows, sample, key, res.Freshness
	}
	if status != st.Status {
		st.Status, st.Since = status, at
	}
	r.states[name] = &st
	r.mu.Unlock()
	r.metrics.observe(st)
	if err != nil {
		return st, fmt.Errorf("check %s: %w", name, err)
	}
	r.log.Debug("check evaluated", "check", name, "status", st.Status, "violations", st.Violations, "elapsed", st.Elapsed)
	return st, nil
}

// evaluate runs a check's SQL, with SourcesRelation in front when it
// reads it.
func (r *Runner) evaluate(ctx context.Context, c Check, at time.Time) (*query.Result, error) {
	sql := c.SQL
	if usesSources(sql) {
		if r.o.Catalog == nil {
			return nil, errors.New(SourcesRelation + " needs the catalog")
		}
		srcs, err := r.o.Catalog.Sources(ctx)
		if err != nil {
			return nil, fmt.Errorf("read sources: %w", err)
		}
		sql = withCTE(sql, sourcesCTE(srcs, at))
	}
	return r.q.Query(ctx, sql)
}

// sampleOf returns the first n rows of res.
func sampleOf(res *query.Result, n int) (*Sample, error) {
	part := &query.Result{Schema: res.Schema, Freshness: res.Freshness}
	left := int64(n)
	for _, rec := range res.Records {
		if left == 0 {
			break
		}
		m := min(left, rec.NumRows())
		part.Records = append(part.Records, rec.NewSlice(0, m))
		part.Rows += m
		left -= m
	}
	defer part.Release()
	var buf bytes.Buffer
	if err := query.WriteJSON(&buf, part); err != nil {
		return nil, err
	}
	s := &Sample{}
	if err := json.Unmarshal(buf.Bytes(), s); err != nil {
		return nil, fmt.Errorf("decode sample: %w", err)
	}
	if s.Rows == nil {
		s.Rows = []json.RawMessage{}
	}
	return s, nil
}

// write stores a run's violating rows in the lake as Parquet.
func (r *Runner) write(ctx context.Context, c Check, res *query.Result, at time.Time) (string, error) {
	if r.o.Bucket == nil {
		return "", nil
	}
	var buf bytes.Buffer
	if err := query.WriteParquet(&buf, res); err != nil {
		return "", err
	}
	key := ResultKey(c.Name, at)
	if err := r.o.Bucket.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return "", fmt.Errorf("write result: %w", err)
	}
	return key, nil
}

// State returns a check's latest state.
func (r *Runner) State(name string) (State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.states[name]
	if !ok {
		return State{}, fmt.Errorf("%w: %s", ErrNoSuchCheck, name)
	}
	return *st, nil
}

// States returns every check's latest state, ordered by name.
func (r *Runner) States() []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]State, 0, len(r.list))
	for _, c := range r.list {
		out = append(out, *r.states[c.Name])
	}
	return out
}
