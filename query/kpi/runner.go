package kpi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// Options configure a Runner. The zero value of every field means its
// default.
type Options struct {
	// Dir is the KPI folder (default ./kpis).
	Dir string
	// Bucket receives each result as Parquet under ResultKey; nil keeps
	// results in memory only.
	Bucket lake.Bucket
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Runner evaluates KPIs on their schedules, writes each result into the
// lake and keeps the latest one for the HTTP API.
type Runner struct {
	q    query.Querier
	o    Options
	log  *slog.Logger
	kpis map[string]KPI
	list []KPI

	mu     sync.Mutex
	latest map[string]*Run
	runs   map[string]*sync.Mutex // one run of a KPI at a time
}

// Run is one evaluation of a KPI.
type Run struct {
	KPI KPI
	// At is when the run started; Elapsed how long it took.
	At      time.Time
	Elapsed time.Duration
	// Result is the latest successful result (nil before the first one).
	Result *query.Result
	// ResultAt is when Result's run started.
	ResultAt time.Time
	// Key is the lake key Result was written to ("" when not written).
	Key string
	// Err is the error of this run, nil when it succeeded.
	Err error
}

// New loads the KPIs of o.Dir.
func New(q query.Querier, o Options) (*Runner, error) {
	if o.Dir == "" {
		o.Dir = "./kpis"
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
	r := &Runner{q: q, o: o, log: o.Logger.With("component", "kpi"), kpis: map[string]KPI{}, list: list,
		latest: map[string]*Run{}, runs: map[string]*sync.Mutex{}}
	for _, k := range list {
		r.kpis[k.Name] = k
		r.runs[k.Name] = &sync.Mutex{}
	}
	return r, nil
}

// KPIs lists the loaded KPIs, ordered by name.
func (r *Runner) KPIs() []KPI { return append([]KPI{}, r.list...) }

// Run evaluates every KPI now and then on its schedule until ctx is
// cancelled. A failed run is logged and kept as the KPI's error; it does
// not stop the runner.
func (r *Runner) Run(ctx context.Context) error {
	r.log.Info("running kpis", "dir", r.o.Dir, "kpis", len(r.list))
	var wg sync.WaitGroup
	for _, k := range r.list {
		wg.Go(func() {
			query.Every(ctx, k.Schedule, func() {
				if _, err := r.RunKPI(ctx, k.Name); err != nil && ctx.Err() == nil {
					r.log.Warn("kpi run failed", "kpi", k.Name, "err", err)
				}
			})
		})
	}
	wg.Wait()
	return nil
}

// ErrNoSuchKPI is returned for a name no KPI file has.
var ErrNoSuchKPI = errors.New("no such kpi")

// RunKPI evaluates one KPI now, writes its result into the lake and
// makes it the latest.
func (r *Runner) RunKPI(ctx context.Context, name string) (*Run, error) {
	k, ok := r.kpis[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchKPI, name)
	}
	r.runs[name].Lock()
	defer r.runs[name].Unlock()
	run := &Run{KPI: k, At: r.o.Now().UTC()}
	res, err := r.q.Query(ctx, k.SQL)
	if err == nil {
		run.Result, run.ResultAt = res, run.At
		err = r.write(ctx, run)
	}
	run.Elapsed = r.o.Now().Sub(run.At)
	run.Err = err
	r.mu.Lock()
	if prev := r.latest[name]; err != nil && prev != nil {
		// keep serving the last good result, with this run's error
		run.Result, run.ResultAt, run.Key = prev.Result, prev.ResultAt, prev.Key
	}
	r.latest[name] = run
	r.mu.Unlock()
	if err != nil {
		return run, fmt.Errorf("kpi %s: %w", name, err)
	}
	r.log.Debug("kpi evaluated", "kpi", name, "rows", res.Rows, "elapsed", run.Elapsed, "key", run.Key)
	return run, nil
}

// write stores a run's result in the lake as Parquet.
func (r *Runner) write(ctx context.Context, run *Run) error {
	if r.o.Bucket == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := query.WriteParquet(&buf, run.Result); err != nil {
		return err
	}
	key := ResultKey(run.KPI.Name, run.At)
	if err := r.o.Bucket.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	run.Key = key
	return nil
}

// Latest returns the latest run of a KPI; ok is false before the first.
// Results are never released: a reader may still hold an older one.
func (r *Runner) Latest(name string) (run *Run, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok = r.latest[name]
	return run, ok
}
