package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
)

// superviseSources runs one ingest per source until ctx ends. A source
// that fails is restarted with exponential backoff (1 s doubling to
// 1 min, reset once it ran for a minute); one failing source never holds
// up the others. Repeated errors are logged once per backoff step.
func superviseSources(ctx context.Context, cat *catalog.Catalog, sources []ingest.Options, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, o := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supervise(ctx, cat, o, log.With("source", o.Name))
		}()
	}
	wg.Wait()
}

func supervise(ctx context.Context, cat *catalog.Catalog, o ingest.Options, log *slog.Logger) {
	backoff := time.Second
	var lastErr string
	repeats := 0
	for ctx.Err() == nil {
		started := time.Now()
		err := ingest.Run(ctx, cat, o)
		if ctx.Err() != nil {
			if err != nil {
				log.Warn("source stopped with an error", "err", err)
			}
			return
		}
		if time.Since(started) > time.Minute {
			backoff, repeats = time.Second, 0
		}
		msg := "stopped"
		if err != nil {
			msg = err.Error()
		}
		if msg == lastErr {
			repeats++
		} else {
			lastErr, repeats = msg, 0
		}
		log.Warn("source failed; restarting", "err", msg, "retry_in", backoff, "repeated", repeats)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}
