package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
)

// Result is one measured run: cdclake or its reference.
type Result struct {
	Scenario, Who string
	Rows          int64
	Bytes         int64 // input bytes (WAL or table data)
	Elapsed       time.Duration
	CPU           time.Duration // of the measured process (cdclake: this process)
	WalsenderCPU  time.Duration // of the PostgreSQL backend serving it
	PeakRSS       int64         // bytes; 0 when not measured
}

// RowsPerSec is the throughput.
func (r Result) RowsPerSec() float64 { return float64(r.Rows) / r.Elapsed.Seconds() }

// Print writes results as a table with the ratio of each run to the
// scenario's reference (the last result of the scenario).
func Print(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\twho\trows\trows/s\tMB/s\tratio\tpeak RSS MiB\tCPU s\twalsender CPU s\t")
	ref := map[string]Result{}
	for _, r := range results {
		ref[r.Scenario] = r
	}
	for _, r := range results {
		ratio := r.RowsPerSec() / ref[r.Scenario].RowsPerSec()
		rss := "-"
		if r.PeakRSS > 0 {
			rss = strconv.FormatInt(r.PeakRSS>>20, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t%.2f\t%s\t%.2f\t%.2f\t\n", r.Scenario, r.Who, r.Rows, r.RowsPerSec(),
			float64(r.Bytes)/r.Elapsed.Seconds()/1e6, ratio, rss, r.CPU.Seconds(), r.WalsenderCPU.Seconds())
	}
	tw.Flush()
}

// env is a private PostgreSQL and lake for one scenario.
type env struct {
	dir string
	pg  *pgtest.Cluster
	cat *catalog.Catalog
	log *slog.Logger
}

func newEnv(ctx context.Context, settings map[string]string) (*env, error) {
	dir, err := os.MkdirTemp("", "cdclake-bench-")
	if err != nil {
		return nil, err
	}
	pg, err := pgtest.New(dir, pgtest.Options{Settings: settings})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	lakeDir := filepath.Join(dir, "lake")
	cat, err := catalog.Open(ctx, catalog.Options{URL: filepath.Join(lakeDir, "catalog.db"), Warehouse: "file://" + lakeDir})
	if err != nil {
		pg.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := pg.ExecErr("postgres", "CREATE DATABASE bench"); err != nil {
		return nil, err
	}
	return &env{dir: dir, pg: pg, cat: cat, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil
}

func (e *env) close() {
	e.cat.Close()
	e.pg.Stop()
	os.RemoveAll(e.dir)
}

func (e *env) url() string { return e.pg.URL("bench") }

func (e *env) queryInt(ctx context.Context, sql string) (int64, error) {
	conn, err := pgx.Connect(ctx, e.url())
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var v int64
	err = conn.QueryRow(ctx, sql).Scan(&v)
	return v, err
}

// processCPU returns the user+system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns this process's peak resident set size (VmHWM).
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM so the next peakRSS measures from now.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// pidCPU returns the CPU time of another process, from /proc.
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // clock ticks, USER_HZ = 100
}

// walsenderWatcher samples the CPU time of the walsender serving
// application name app until stopped, and returns the last sample.
func (e *env) walsenderWatcher(ctx context.Context, app string) (stop func() time.Duration) {
	done := make(chan struct{})
	result := make(chan time.Duration, 1)
	go func() {
		var last time.Duration
		conn, err := pgx.Connect(ctx, e.url())
		if err == nil {
			defer conn.Close(context.Background())
		}
		pid := 0
		for {
			select {
			case <-done:
				result <- last
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err != nil {
				continue
			}
			if pid == 0 {
				_ = conn.QueryRow(ctx, "SELECT pid FROM pg_stat_replication WHERE application_name = $1", app).Scan(&pid)
			}
			if pid != 0 {
				if c := pidCPU(pid); c > 0 {
					last = c
				}
			}
		}
	}()
	return func() time.Duration { close(done); return <-result }
}
