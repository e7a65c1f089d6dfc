// Package chaos is cdclake's reliability suite: it streams a workload
// into the lake through the real cdclake binary while faults are
// injected, then checks that the lake holds exactly the source's history.
//
// The parts, in the order a run uses them:
//
//   - Workload (workload.go) writes transactions of inserts, updates,
//     deletes and key changes to tables whose rows carry a version that
//     rises with every update, and logs every transaction's xid and
//     changes; a commit whose outcome a fault hid is settled with
//     txid_status, so the log holds exactly the committed transactions.
//   - Proxy (proxy.go) stands between cdclake and the S3 server and
//     injects 5xx answers, slow answers, connection resets and requests
//     that hang; it can also call a function when a request of a class
//     (a Parquet upload, a catalog commit's metadata) passes, which is how
//     the suite kills cdclake at a chosen phase.
//   - Supervisor (supervisor.go) runs the binary like a service manager
//     does: it restarts it with backoff when it exits, kills it with
//     SIGKILL on demand, and feeds every line it prints to a Recorder.
//   - Recorder (logs.go) keeps every line a process printed and every
//     error a test saw, and counts the secrets found in them.
//   - Check (check.go) reads the changelog tables back, resolves them by
//     key and compares the result with the source row for row, and the
//     changes with the workload's log transaction by transaction;
//     VerifyTable (verify.go) reads every data file of a table and checks
//     it against its manifest entry.
//
// The tests (chaos_test.go and the other _test files) wire these to
// throwaway PostgreSQL clusters (internal/pgtest) and S3 servers
// (internal/s3test). docs/reliability.md states what they show.
package chaos
