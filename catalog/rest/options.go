package rest

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lake"
)

// DefaultGrace is how long after an hour ends its partition stays open
// once the source is complete past the hour's end.
const DefaultGrace = 5 * time.Minute

// Options configure the catalog service. Catalog is required; the zero
// value of every other field means its default.
type Options struct {
	// Catalog is the lake's catalog.
	Catalog *catalog.Catalog
	// Bucket and Location are the lake: file keys, checksums and downloads
	// need them. Without them manifests list URLs only.
	Bucket   lake.BucketReader
	Location lake.Location

	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz. It is compared in constant time and never
	// logged. cdclake takes it from the environment (CDCLAKE_TOKEN).
	Token string
	// CORSOrigins lists the origins browsers may call the API from
	// ("*" for any). Default: none, CORS off.
	CORSOrigins []string

	// Grace is added to an hour's end before its partition can close
	// (default DefaultGrace): it absorbs clock skew between PostgreSQL and
	// cdclake.
	Grace time.Duration
	// SourceStatus reports what the running process knows about a source
	// beyond the catalog: slot lag, state, whether it is caught up. Nil:
	// only catalog facts are served.
	SourceStatus func(ctx context.Context, src catalog.Source) (SourceStatus, error)

	// Registerer receives the HTTP request metrics and the catalog
	// collector; Gatherer is what /metrics serves. Default: a new registry
	// with the Go and process collectors for both. When only Registerer is
	// set and it is a Gatherer (a *prometheus.Registry), it is served.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Logger logs requests and problems (default slog.Default()), with
	// component=catalog-api.
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// SourceStatus is what the process running a source's ingest knows and
// the catalog does not. Every field is optional.
type SourceStatus struct {
	// SlotLagBytes is how much WAL the replication slot holds past its
	// confirmed position (pg_current_wal_lsn() - confirmed_flush_lsn).
	SlotLagBytes *int64
	// CaughtUpAt, when set, is a time before which every transaction the
	// source committed is in the lake: WALTracker.CaughtUpAt gives it from
	// samples of the server's WAL position. It lets the partitions of an
	// idle source close.
	CaughtUpAt time.Time
	// State overrides the state derived from the catalog ("streaming",
	// "stopped", "error: ...").
	State string
}

func (o Options) withDefaults() Options {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "catalog-api")
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
