package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/catalog/rest"
	"github.com/cdclake/cdclake/ingest"
)

// walSampleEvery is how often cdclake run samples each source's WAL
// position; walSampleClock gives the time of a sample (tests move it).
var (
	walSampleEvery = 5 * time.Second
	walSampleClock = time.Now
)

// walSampler samples the WAL insert position of each source cdclake run
// streams, so that the catalog API can tell when an idle source is caught
// up (rest.WALTracker, SourceStatus.CaughtUpAt) and close its hours. The
// insert position (pg_current_wal_insert_lsn()), not the write position,
// lies past the commit record of every transaction that returned before
// the sample, including one committed with synchronous_commit = off.
type walSampler struct {
	sources  []ingest.Options
	trackers map[string]*rest.WALTracker // by source name
	log      *slog.Logger
}

func newWALSampler(sources []ingest.Options, log *slog.Logger) *walSampler {
	s := &walSampler{trackers: map[string]*rest.WALTracker{}, log: log}
	for _, o := range sources {
		if o.Name == "" {
			continue
		}
		s.sources = append(s.sources, o)
		s.trackers[o.Name] = &rest.WALTracker{}
	}
	return s
}

// run samples every source until ctx ends.
func (s *walSampler) run(ctx context.Context) {
	done := make(chan struct{})
	for _, o := range s.sources {
		go func() {
			defer func() { done <- struct{}{} }()
			s.sample(ctx, o, s.trackers[o.Name])
		}()
	}
	for range s.sources {
		<-done
	}
}

// sample feeds one source's tracker, reconnecting after an error.
func (s *walSampler) sample(ctx context.Context, o ingest.Options, tr *rest.WALTracker) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		if conn == nil {
			if c, err := pgx.Connect(ctx, o.Source); err == nil {
				conn = c
			} else if ctx.Err() == nil {
				s.log.Debug("WAL sampler cannot connect", "source", o.Name, "err", catalog.Redact(err.Error()))
			}
		}
		if conn != nil {
			// taken before the query: a transaction that committed
			// before it has its commit record below the answer
			at := walSampleClock()
			var lsn pglogrepl.LSN
			qctx, cancel := context.WithTimeout(ctx, walSampleEvery)
			err := conn.QueryRow(qctx, "SELECT pg_current_wal_insert_lsn()").Scan(&lsn)
			cancel()
			if err == nil {
				tr.Observe(at, uint64(lsn))
			} else {
				conn.Close(context.Background())
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(walSampleEvery):
		}
	}
}

// status is the catalog API's SourceStatus: when the source's watermark
// has reached a sample, the time of that sample.
func (s *walSampler) status(_ context.Context, src catalog.Source) (rest.SourceStatus, error) {
	tr := s.trackers[src.Name]
	if tr == nil {
		return rest.SourceStatus{}, nil
	}
	// the samples are server positions, the watermark a lake position
	return rest.SourceStatus{CaughtUpAt: tr.CaughtUpAt(src.LSN - min(src.LSNBase, src.LSN))}, nil
}
