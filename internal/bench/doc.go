// Package bench runs cdclake's benchmark scenarios against references
// measured in the same run: stream (pg_recvlogical draining a copy of the
// same slot), snapshot (COPY ... TO STDOUT of the same table),
// big-transaction, query (the same KPI SQL on the source PostgreSQL) and
// freshness (commit-to-visible latency under a steady write load), each
// on a private PostgreSQL it starts itself; compaction and metadata
// growth (Compaction, Metadata: DuckDB merging the same Parquet files) on
// changelogs written by internal/changegen into a folder lake.
// cmd/cdclake's bench command prints the results; the numbers and how to
// reproduce them are in docs/benchmarks.md.
package bench
