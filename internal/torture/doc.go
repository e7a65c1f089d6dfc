// Package torture is cdclake's randomized differential suite: PostgreSQL
// is the oracle, so no model of the expected lake is needed.
//
// A run starts a throwaway PostgreSQL 15 cluster with two service
// databases, streams both into one lake with the real cdclake binary (one
// `cdclake ingest` process per source, restarted when it dies), and plays
// rounds. Each round draws actions from a seeded generator (gen.go):
// inserts, updates, deletes, key changes, upserts, TOASTed values left
// untouched, edge values of every mapped type, large transactions that
// PostgreSQL streams and ingest stages in parts (with savepoints rolled
// back, some aborted, several interleaved), TRUNCATE, partition
// maintenance, DDL, REPLICA IDENTITY switches, tables added and dropped,
// asynchronous commits, compaction looping beside ingest, reloads,
// `--catch-up` runs, and kill -9 of ingest and of compaction.
//
// After every round the lake is compared with the source (compare.go),
// every row and every column in a canonical text form per type, through
// four read paths: the changelog resolved by key with a reference
// resolver written here (independent of compact/ and query/), the fresh
// view schema.table of the query engine, the compacted snapshot table
// after a compaction pass, both read by iceberg-go's scan. It also checks
// that no (_cdc_lsn, _cdc_seq) appears twice and, sampled all along, that
// a slot's confirmed LSN never passes the catalog watermark.
//
// CDCLAKE_TORTURE_SEED repeats a run's choices, CDCLAKE_TORTURE_ROUNDS
// sets the number of rounds and CDCLAKE_TORTURE_SCALE multiplies it and
// the sizes. docs/reliability.md says what the suite covers.
package torture
