package rest

import (
	"sync"
	"time"
)

// WALTracker derives SourceStatus.CaughtUpAt from samples of a source
// server's WAL insert position (SELECT pg_current_wal_insert_lsn(), read
// after the sample's time): a transaction that committed before a sample
// was taken has its commit record below the sampled position (the write
// position, pg_current_wal_lsn(), can miss a commit made with
// synchronous_commit = off), so once the watermark reaches that position
// every such transaction is in the lake. This is what lets the partitions
// of an idle source close (cdclake run samples its sources). Sample as
// often as partitions should be able to close. Safe for concurrent use.
type WALTracker struct {
	mu      sync.Mutex
	samples []walSample // ascending in time and position
}

type walSample struct {
	at  time.Time
	lsn uint64
}

const maxWALSamples = 4096

// Observe records that the server's WAL position was lsn at time at.
func (w *WALTracker) Observe(at time.Time, lsn uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.samples); n > 0 && (lsn < w.samples[n-1].lsn || at.Before(w.samples[n-1].at)) {
		return // out of order: a late answer, or a server that went back (restored)
	}
	if len(w.samples) >= maxWALSamples {
		w.samples = append(w.samples[:0], w.samples[len(w.samples)/2:]...)
	}
	w.samples = append(w.samples, walSample{at: at, lsn: lsn})
}

// CaughtUpAt returns the time of the newest sample at or below the
// watermark (the zero time when there is none) and forgets older samples.
func (w *WALTracker) CaughtUpAt(watermark uint64) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := -1
	for j, s := range w.samples {
		if s.lsn > watermark {
			break
		}
		i = j
	}
	if i < 0 {
		return time.Time{}
	}
	w.samples = w.samples[i:]
	return w.samples[0].at
}
