// Package compact turns each changelog table that ingest writes into a
// snapshot table of current rows, and keeps both tables tidy.
//
// How the parts fit:
//
//   - load.go reads a table pair's metadata (no data) into a State;
//   - plan.go decides, from a State alone, what a pass does (Plan): the
//     watermarks, the changelog files holding changes, the changelog hours
//     to merge, the snapshots to expire;
//   - execute.go carries a plan out: fold.go folds the changes into the
//     last version of each key (TOAST carry, key moves, truncates),
//     route.go sends each changed key to the file whose key range holds
//     it, rewrite.go and merge.go rewrite only those files (key.go orders
//     keys), and the result is published in one commit;
//   - housekeep.go merges small changelog files, expires snapshots and
//     deletes orphan files;
//   - compactor.go runs all that per table, retrying when a concurrent
//     writer wins a commit; timetravel.go reads earlier states;
//   - bench.go and bench_metadata.go are the benchmarks of
//     docs/benchmarks.md.
//
// The snapshot table contract (identifier, columns, the cdclake.source-lsn
// watermark) and the design are in docs/compaction.md.
package compact
