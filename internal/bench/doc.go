// Package bench runs cdclake's benchmark scenarios against references
// measured in the same run, each on a private PostgreSQL it starts itself:
// stream (pg_recvlogical draining a copy of the same slot), snapshot
// (COPY ... TO STDOUT of the same table), big-transaction, query (the
// same KPI SQL on the source PostgreSQL), freshness (commit-to-visible
// latency under a steady write load), and compaction and metadata growth
// (compact.Bench, compact.BenchMetadata: DuckDB merging the same Parquet
// files). cmd/cdclake's bench command prints the results; the numbers
// and how to reproduce them are in docs/benchmarks.md.
package bench
