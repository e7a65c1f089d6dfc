package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// FreshnessReport is the outcome of the freshness scenario.
type FreshnessReport struct {
	Rows, Commits int64         // written under load
	Load          time.Duration // how long the load ran
	Poll          time.Duration // pause between two polls of the lake
	Visible       int64         // rows the lake held at the end
	// P50, P99 and Max of commit-to-visible latency over all rows.
	P50, P99, Max time.Duration
}

// commit is one transaction of the write load: its last key and when
// PostgreSQL confirmed it.
type commit struct {
	last int64
	at   time.Time
}

// Freshness writes Rate rows/s (default 5,000) for Duration (default
// 60 s) into PostgreSQL, in one transaction every 10 ms (or every row
// when that is slower) holding the rows then due, while ingest
// streams with its default flushes, and polls the lake through the query
// views until each transaction's rows are visible in public.orders. A
// transaction confirmed at T and first seen by a poll that returned at V
// is visible after V-T: an upper bound, as it includes the poll's own
// time.
func Freshness(ctx context.Context, o Options) (*FreshnessReport, error) {
	rate, load := def(o.Rate, 5000), o.Duration
	if load <= 0 {
		load = time.Minute
	}
	interval := max(10*time.Millisecond, time.Second/time.Duration(rate))
	rep := &FreshnessReport{Poll: 20 * time.Millisecond}

	e, err := newEnv(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.pg.ExecErr("bench", ordersDDL); err != nil {
		return nil, err
	}
	ing := ingest.Options{Source: e.url(), Name: "bench", CatchUp: true, Logger: e.log}
	if err := ingest.Run(ctx, e.cat, ing); err != nil { // slot and the empty table's changelog
		return nil, err
	}
	loc, err := lake.Parse(filepath.Join(e.dir, "lake"))
	if err != nil {
		return nil, err
	}
	eng, err := query.Open(ctx, e.cat, query.Options{Lake: loc, Logger: e.log})
	if err != nil {
		return nil, err
	}
	defer eng.Close()

	// the goroutines stop before the engine and the environment close
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	streamDone := make(chan error, 1)
	ing.CatchUp = false
	wg.Add(1)
	go func() { defer wg.Done(); streamDone <- ingest.Run(sctx, e.cat, ing) }()
	conn, err := pgx.Connect(ctx, e.url())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := waitStreaming(ctx, conn, "cdclake_bench", streamDone); err != nil {
		return nil, err
	}

	var mu sync.Mutex
	var commits []commit
	// write runs the load; it sets rep.Load before it returns
	write := func() error {
		w, err := pgx.Connect(sctx, e.url())
		if err != nil {
			return err
		}
		defer w.Close(context.Background())
		tick := time.NewTicker(interval)
		defer tick.Stop()
		next, begin := int64(1), time.Now()
		defer func() { rep.Load = time.Since(begin) }()
		for end := begin.Add(load); time.Now().Before(end); {
			select {
			case <-tick.C:
			case <-sctx.Done():
				return sctx.Err()
			}
			// as many rows as are due, so a slow commit does not lower the rate
			last := int64(time.Since(begin).Seconds() * float64(rate))
			if last < next {
				continue
			}
			if _, err := w.Exec(sctx, insertOrders(next, last+1)); err != nil {
				return err
			}
			at := time.Now()
			mu.Lock()
			commits = append(commits, commit{last, at})
			mu.Unlock()
			next = last + 1
		}
		return nil
	}
	loadDone := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); loadDone <- write() }()

	var lat []time.Duration // one per row
	seen := 0               // commits seen in the lake
	var deadline time.Time  // set when the load stops
	for {
		res, err := eng.Query(ctx, `SELECT max(id) FROM public.orders`)
		if err != nil {
			return nil, fmt.Errorf("poll the lake: %w", err)
		}
		v, ok := query.Text(res.Records[0].Column(0), 0)
		res.Release()
		seenAt := time.Now()
		if ok {
			visible, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("poll the lake: max(id) = %q", v)
			}
			mu.Lock()
			for ; seen < len(commits) && commits[seen].last <= visible; seen++ {
				first := int64(1)
				if seen > 0 {
					first = commits[seen-1].last + 1
				}
				for range commits[seen].last - first + 1 {
					lat = append(lat, seenAt.Sub(commits[seen].at))
				}
			}
			mu.Unlock()
		}
		if deadline.IsZero() {
			select {
			case err := <-loadDone:
				if err != nil {
					return nil, fmt.Errorf("write load: %w", err)
				}
				deadline = time.Now().Add(30 * time.Second)
			default:
			}
		}
		if !deadline.IsZero() && seen == len(commits) {
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d transactions not visible in the lake 30 s after the load stopped", len(commits)-seen, len(commits))
		}
		select {
		case err := <-streamDone:
			return nil, fmt.Errorf("ingest stopped: %v", err)
		case <-time.After(rep.Poll):
		}
	}
	stop()
	if err := <-streamDone; err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if len(commits) == 0 {
		return nil, errors.New("the load committed nothing")
	}
	rep.Commits, rep.Rows = int64(len(commits)), commits[len(commits)-1].last
	rows, err := lakeRows(ctx, eng, `SELECT count(*) FROM public.orders`)
	if err != nil {
		return nil, err
	}
	if rep.Visible, err = strconv.ParseInt(rows[0], 10, 64); err != nil {
		return nil, err
	}
	if rep.Visible != rep.Rows {
		return nil, fmt.Errorf("the lake holds %d orders, PostgreSQL committed %d", rep.Visible, rep.Rows)
	}
	slices.Sort(lat)
	rep.P50, rep.P99, rep.Max = lat[(len(lat)-1)/2], lat[(len(lat)-1)*99/100], lat[len(lat)-1]
	return rep, nil
}

// waitStreaming waits until the walsender of slot streams.
func waitStreaming(ctx context.Context, conn *pgx.Conn, slot string, done <-chan error) error {
	for range 600 {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
			WHERE s.slot_name = $1 AND r.state = 'streaming'`, slot).Scan(&n)
		if err != nil || n > 0 {
			return err
		}
		select {
		case err := <-done:
			return fmt.Errorf("ingest stopped: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("ingest is not streaming after 30 s")
}
