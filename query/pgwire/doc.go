// Package pgwire serves a query.Engine over the PostgreSQL wire protocol
// (version 3), so psql, BI tools and PostgreSQL drivers can run SELECTs
// on the lake.
//
// Server accepts connections, speaks and requires TLS when Options.TLS
// has a certificate (else refuses it: clients fall back to plain TCP;
// bind to loopback or tunnel), refuses GSS encryption and, when a password
// is configured (CDCLAKE_TOKEN in cdclake serve), checks it with
// SCRAM-SHA-256 (scram.go), or in a cleartext password message for
// clients without SCRAM, compared in constant time.
// Sessions speak the simple query protocol and the extended one (Parse,
// Bind, Describe, Execute, Sync, Close; parameters in text or the common
// binary formats; results in text or binary as Bind asks, see encode.go).
// Cancel requests interrupt the running query. A simple query's text is
// split into statements (split.go) answered in turn. Session statements
// (SET, BEGIN, COMMIT, ...) are acknowledged and ignored; everything else
// goes to the engine, which runs one read-only SELECT at a time. Each
// result's freshness is sent as a ParameterStatus "cdclake.freshness"
// before its CommandComplete.
package pgwire
