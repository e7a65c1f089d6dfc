package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/procstat"
)

// Options size the scenarios. Zero values mean the sizes of the issue.
type Options struct {
	// Rows: stream: inserts (1M); snapshot: table rows (10M);
	// big-transaction: rows (5M); query: orders (10M); compact: table
	// rows (10M).
	Rows      int64
	Updates   int64         // stream: updates (200k)
	Workers   int           // snapshot: connections (default 2)
	TxnRows   int64         // stream: rows per transaction (10k)
	MemBudget int64         // big-transaction: ingest memory budget (256 MiB)
	Rate      int64         // freshness: rows written per second (5,000)
	Duration  time.Duration // freshness: how long the load runs (60 s)
	Changes   int64         // compact: changes of the large batch (1M; the small ones are 1%)
	Flushes   int           // metadata: flushes (86,400)
	Snapshots int           // metadata: changelog snapshots kept (compaction's default, 100)
}

const ordersDDL = `CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
	amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, note text)`

// insertOrders inserts orders [from, to) in one statement.
func insertOrders(from, to int64) string {
	return fmt.Sprintf(`INSERT INTO orders SELECT g, (g %% 1000)::int, 'placed', (g %% 100000) / 100.0,
		'2026-01-01'::timestamptz + g * interval '1 second', 'note ' || md5(g::text) FROM generate_series(%d, %d) g`, from, to-1)
}

// Stream drains 1M inserts in 10k-row transactions and 200k updates from a
// slot with cdclake --catch-up, and the same changes from a copy of the
// slot with pg_recvlogical.
func Stream(ctx context.Context, o Options) ([]Result, error) {
	o.Rows, o.Updates, o.TxnRows = def(o.Rows, 1_000_000), def(o.Updates, 200_000), def(o.TxnRows, 10_000)
	e, err := newEnv(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer e.close()
	url := e.url() + "&application_name=cdclake_bench"
	if err := e.pg.ExecErr("bench", ordersDDL); err != nil {
		return nil, err
	}
	ing := ingest.Options{Source: url, Name: "bench", Snapshot: "never", CatchUp: true, Logger: e.log}
	if err := ingest.Run(ctx, e.cat, ing); err != nil { // creates publication and slot
		return nil, err
	}
	if err := e.pg.ExecErr("bench", "SELECT pg_copy_logical_replication_slot('cdclake_bench', 'reference')"); err != nil {
		return nil, err
	}
	startLSN, _ := e.queryInt(ctx, "SELECT pg_current_wal_lsn() - '0/0'")
	var stmts []string
	for from := int64(1); from <= o.Rows; from += o.TxnRows {
		stmts = append(stmts, insertOrders(from, min(from+o.TxnRows, o.Rows+1)))
	}
	for from := int64(1); from <= o.Updates; from += o.TxnRows {
		stmts = append(stmts, fmt.Sprintf("UPDATE orders SET status = 'paid' WHERE id >= %d AND id < %d", from, min(from+o.TxnRows, o.Updates+1)))
	}
	if err := e.pg.ExecErr("bench", stmts...); err != nil {
		return nil, err
	}
	endLSN, err := e.queryInt(ctx, "SELECT pg_current_wal_lsn() - '0/0'")
	if err != nil {
		return nil, err
	}
	rows, walBytes := o.Rows+o.Updates, endLSN-startLSN

	// reference first, so cdclake does not profit from a warm cache alone
	bin, _ := pgtest.BinDir()
	watch := e.walsenderWatcher(ctx, "pg_recvlogical")
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_recvlogical"), "-d", e.url(), "--slot", "reference", "--start",
		"-o", "proto_version=1", "-o", "publication_names=cdclake_bench",
		"--endpos", pglogrepl.LSN(endLSN).String(), "-f", "/dev/null", "--no-loop")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_recvlogical: %v: %s", err, out)
	}
	ref := Result{Scenario: "stream", Who: "pg_recvlogical", Rows: rows, Bytes: walBytes, Elapsed: time.Since(start),
		CPU: time.Duration(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()), WalsenderCPU: watch()}

	watch = e.walsenderWatcher(ctx, "cdclake_bench")
	procstat.ResetPeakRSS()
	cpu0 := procstat.CPU()
	start = time.Now()
	if err := ingest.Run(ctx, e.cat, ing); err != nil {
		return nil, err
	}
	got := Result{Scenario: "stream", Who: "cdclake", Rows: rows, Bytes: walBytes, Elapsed: time.Since(start),
		CPU: procstat.CPU() - cpu0, WalsenderCPU: watch(), PeakRSS: procstat.PeakRSS()}
	return []Result{got, ref}, nil
}

// BigTransaction streams one transaction of 5M rows through the spool.
func BigTransaction(ctx context.Context, o Options) ([]Result, error) {
	o.Rows, o.MemBudget = def(o.Rows, 5_000_000), def(o.MemBudget, 256<<20)
	e, err := newEnv(ctx, map[string]string{"logical_decoding_work_mem": "'64MB'"})
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.pg.ExecErr("bench", ordersDDL); err != nil {
		return nil, err
	}
	ing := ingest.Options{Source: e.url(), Name: "bench", Snapshot: "never", CatchUp: true, Logger: e.log,
		MemoryBudget: o.MemBudget, SpillDir: filepath.Join(e.dir, "spill")}
	if err := ingest.Run(ctx, e.cat, ing); err != nil {
		return nil, err
	}
	if err := e.pg.ExecErr("bench", insertOrders(1, o.Rows+1)); err != nil {
		return nil, err
	}
	size, _ := e.queryInt(ctx, "SELECT pg_table_size('orders')")
	if os.Getenv("GOMEMLIMIT") == "" { // as cdclake ingest sets it
		debug.SetMemoryLimit(o.MemBudget + 256<<20)
	}
	procstat.ResetPeakRSS()
	cpu0 := procstat.CPU()
	start := time.Now()
	if err := ingest.Run(ctx, e.cat, ing); err != nil {
		return nil, err
	}
	return []Result{{Scenario: "big-transaction", Who: fmt.Sprintf("cdclake (budget %d MiB)", o.MemBudget>>20), Rows: o.Rows,
		Bytes: size, Elapsed: time.Since(start), CPU: procstat.CPU() - cpu0, PeakRSS: procstat.PeakRSS()}}, nil
}

// Snapshot copies a 10M-row table with cdclake's initial snapshot, and with
// COPY ... TO STDOUT (FORMAT binary) to nowhere on as many connections.
func Snapshot(ctx context.Context, o Options) ([]Result, error) {
	o.Rows, o.Workers = def(o.Rows, 10_000_000), int(def(int64(o.Workers), 2))
	e, err := newEnv(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.pg.ExecErr("bench", ordersDDL, insertOrders(1, o.Rows+1), "VACUUM ANALYZE orders"); err != nil {
		return nil, err
	}
	size, _ := e.queryInt(ctx, "SELECT pg_table_size('orders')")
	pages, _ := e.queryInt(ctx, "SELECT pg_relation_size('orders') / current_setting('block_size')::int")

	// the reference is quick and its rate varies most: the median of three
	var runs []time.Duration
	for range 3 {
		start := time.Now()
		if err := copyBinary(ctx, e.url(), pages, o.Workers); err != nil {
			return nil, err
		}
		runs = append(runs, time.Since(start))
	}
	slices.Sort(runs)
	ref := Result{Scenario: "snapshot", Who: fmt.Sprintf("COPY binary x%d", o.Workers), Rows: o.Rows, Bytes: size, Elapsed: runs[1]}

	procstat.ResetPeakRSS()
	cpu0 := procstat.CPU()
	start := time.Now()
	err = ingest.Run(ctx, e.cat, ingest.Options{Source: e.url(), Name: "bench", CatchUp: true, Logger: e.log, SnapshotWorkers: o.Workers})
	if err != nil {
		return nil, err
	}
	got := Result{Scenario: "snapshot", Who: fmt.Sprintf("cdclake x%d", o.Workers), Rows: o.Rows, Bytes: size,
		Elapsed: time.Since(start), CPU: procstat.CPU() - cpu0, PeakRSS: procstat.PeakRSS()}
	return []Result{got, ref}, nil
}

// copyBinary reads the table in ctid ranges on n connections to nowhere.
func copyBinary(ctx context.Context, url string, pages int64, n int) error {
	g, gctx := errgroup.WithContext(ctx)
	per := int64(math.Ceil(float64(pages+1) / float64(n)))
	for i := 0; i < n; i++ {
		from, to := int64(i)*per, int64(i+1)*per
		g.Go(func() error {
			conn, err := pgx.Connect(gctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			where := fmt.Sprintf("ctid >= '(%d,0)'::tid", from)
			if i < n-1 {
				where += fmt.Sprintf(" AND ctid < '(%d,0)'::tid", to)
			}
			_, err = conn.PgConn().CopyTo(gctx, io.Discard, "COPY (SELECT * FROM orders WHERE "+where+") TO STDOUT (FORMAT binary)")
			return err
		})
	}
	return g.Wait()
}

func def(v, d int64) int64 {
	if v <= 0 {
		return d
	}
	return v
}
