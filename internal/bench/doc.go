// Package bench runs cdclake's benchmark scenarios against references
// measured in the same run (pg_recvlogical draining a copy of the same
// slot, COPY ... TO STDOUT of the same table), on a private PostgreSQL it
// starts itself. cmd/cdclake's bench command prints the results; the
// numbers and how to reproduce them are in docs/benchmarks.md.
package bench
