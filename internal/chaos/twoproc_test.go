package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestChaosTwoProcesses starts a second cdclake on a source one already
// streams, and, on a fresh source, a second one while the first is in its
// initial snapshot. In each case one must go on streaming and the other
// stop with a message saying the source is taken; afterwards the lake
// must hold exactly the source's history.
func TestChaosTwoProcesses(t *testing.T) {
	cases := []struct {
		name      string
		db        string
		secondAt  string // the line of the first process that starts the second
		wantMatch string // a regexp matching the error of the one that stops
	}{
		{"while streaming", "busy", "msg=streaming", `replication slot "cdclake_busy" is in use by another process`},
		{"during the initial snapshot", "race", `msg="snapshot started"`, `another (process|cdclake)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := startSource(t, tc.db, nil)
			tables := []string{"items"}
			wl := &Workload{URL: src.admin, Tables: tables, InitialRows: 100_000, TxnRate: 50, Log: suiteLog}
			if err := wl.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			src.publish(t, tables...)
			lake := filepath.Join(t.TempDir(), "lake")
			env := childEnv(t, nil, "")
			args := []string{"ingest", "--source", src.url, "--lake", lake, "--flush-interval", "200ms"}

			var second atomic.Pointer[proc]
			var firstFlushes atomic.Int64
			started := make(chan struct{})
			first := startProc(t, "first", env, func(line string) {
				if strings.Contains(line, tc.secondAt) && second.Load() == nil {
					second.Store(startProc(t, "second", env, nil, args...))
					close(started)
				}
				if strings.Contains(line, "msg=flushed") {
					firstFlushes.Add(1)
				}
			}, args...)
			select {
			case <-started:
			case <-time.After(60 * time.Second):
				t.Fatalf("first process never printed %s:\n%s", tc.secondAt, tail(first.output(), 3000))
			}
			// every transaction of the workload streams: it starts once the slot exists
			waitSlot(t, src, "cdclake_"+tc.db)
			wlCtx, stopWl := context.WithCancel(ctx)
			wlDone := make(chan error, 1)
			go func() { wlDone <- wl.Run(wlCtx) }()

			// one of them must stop, with a message naming the cause
			var loser, winner *proc
			deadline := time.After(90 * time.Second)
			for loser == nil {
				select {
				case <-second.Load().done:
					loser, winner = second.Load(), first
				case <-first.done:
					loser, winner = first, second.Load()
				case <-deadline:
					t.Fatalf("both processes still run after 90 s:\nfirst:\n%s\nsecond:\n%s", tail(first.output(), 2000), tail(second.Load().output(), 2000))
				}
			}
			msg := lastError(loser.output())
			t.Logf("the process that stopped (first: %v) exited %d: %s", loser == first, loser.code, msg)
			if loser.code != 1 || !regexp.MustCompile(tc.wantMatch).MatchString(msg) {
				t.Errorf("the process that stopped exited %d with %q, want 1 and a message containing %q", loser.code, msg, tc.wantMatch)
			}
			// the other goes on: it commits what the workload writes
			time.Sleep(2 * time.Second)
			if winner.exited() {
				t.Fatalf("the other process exited too (%d): %s", winner.code, lastError(winner.output()))
			}
			stopWl()
			if err := <-wlDone; err != nil {
				t.Fatal(err)
			}
			if code := winner.stop(); code != 0 {
				t.Errorf("SIGTERM: exit %d: %s", code, lastError(winner.output()))
			}
			if code, out := runOnce(t, tc.db, env, 2*time.Minute, append(args, "--catch-up")...); code != 0 {
				t.Fatalf("catch-up exited %d: %s", code, lastError(out))
			}
			cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
			rep, err := Check(ctx, cat, src.conn(t), tc.db, tables, wl.Committed())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("check: %d transactions, %d changes, %d rows", rep.Txns, rep.Changes, rep.SourceRows)
			if err := rep.Err(); err != nil {
				t.Error(err)
			}
			verifyFiles(t, cat, tc.db, tables)
		})
	}
}

// TestChaosTwoProcessesInterleaved starts two cdclake processes on a fresh
// source and, with a proxy in front of PostgreSQL for each, interleaves
// their start-ups the way two processes started at the same moment can:
// A checks the source and finds no slot; B creates the slot and records
// the source; A, held until then, finds the slot free, no snapshot to
// resume, and starts streaming; B records its snapshot, and A's first
// change of the table sees that record (so A does not copy the table
// itself); B copies the table's rows once A has committed a first flush.
// One must stop with a message naming the other, and the lake must hold
// exactly the source. (Seen unforced in a run of two processes started
// together: the lake missed most rows the table had before the slot.)
func TestChaosTwoProcessesInterleaved(t *testing.T) {
	ctx := context.Background()
	src := startSource(t, "inter", nil)
	tables := []string{"items"}
	wl := &Workload{URL: src.admin, Tables: tables, InitialRows: 20_000, TxnRate: 50, Log: suiteLog}
	if err := wl.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	src.publish(t, tables...)
	lake := filepath.Join(t.TempDir(), "lake")
	env := childEnv(t, nil, "")
	wire := func() *WireProxy {
		w, err := NewWireProxy(fmt.Sprintf("127.0.0.1:%d", src.pg.Port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	args := func(w *WireProxy) []string {
		return []string{"ingest", "--source", fmt.Sprintf("postgres://chaos:%s@%s/inter?sslmode=disable", pgPassword, w.Addr),
			"--lake", lake, "--flush-interval", "200ms"}
	}
	// hold stops a process before it sends pattern (after it sent after)
	// until release is closed
	hold := func(w *WireProxy, after, pattern string) (held, release chan struct{}) {
		held, release = make(chan struct{}), make(chan struct{})
		w.When(after, pattern, func() {
			close(held)
			select {
			case <-release:
			case <-time.After(90 * time.Second):
			}
		})
		return held, release
	}
	// wait waits for ch, or for the process to end (a right answer too)
	wait := func(ch <-chan struct{}, p *proc, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s within 60 s", what)
		}
	}
	onLine := func(pattern string) (func(string), chan struct{}) {
		ch := make(chan struct{})
		var once sync.Once
		return func(line string) {
			if strings.Contains(line, pattern) {
				once.Do(func() { close(ch) })
			}
		}, ch
	}
	wa, wb := wire(), wire()
	// A: held at its start-up's slot lookup, after it made sure of the publication
	aHeld, aGo := hold(wa, "SELECT EXISTS (SELECT 1 FROM pg_publication", "FROM pg_replication_slots")
	// B: held when it plans its snapshot (after the slot and the source
	// record), then when it starts reading (after the snapshot records)
	bPlan, bPlanGo := hold(wb, "CREATE_REPLICATION_SLOT", "c.oid = $1::regclass")
	bCopy, bCopyGo := hold(wb, "CREATE_REPLICATION_SLOT", "COPY (SELECT")
	aStreamsLine, aStreams := onLine("msg=streaming")
	aFlushedLine, aFlushed := onLine("msg=flushed")
	a := startProc(t, "A", env, func(line string) { aStreamsLine(line); aFlushedLine(line) }, args(wa)...)
	wait(aHeld, a, "slot lookup of A")
	b := startProc(t, "B", env, nil, args(wb)...)
	wait(bPlan, b, "snapshot planning of B")
	close(aGo)
	wait(aStreams, a, "streaming of A")
	close(bPlanGo)
	wait(bCopy, b, "snapshot reading of B")
	waitSlot(t, src, "cdclake_inter")
	wlCtx, stopWl := context.WithCancel(ctx)
	wlDone := make(chan error, 1)
	go func() { wlDone <- wl.Run(wlCtx) }()
	wait(aFlushed, a, "flush of A")
	close(bCopyGo)

	var loser, winner *proc
	select {
	case <-a.done:
		loser, winner = a, b
	case <-b.done:
		loser, winner = b, a
	case <-time.After(90 * time.Second):
		t.Fatalf("both processes still run after 90 s")
	}
	msg := lastError(loser.output())
	t.Logf("%s stopped (exit %d): %s", map[*proc]string{a: "A", b: "B"}[loser], loser.code, msg)
	if loser.code != 1 || !regexp.MustCompile(`another (process|cdclake)`).MatchString(msg) {
		t.Errorf("the process that stopped exited %d with %q, want 1 and a message naming the other process", loser.code, msg)
	}
	time.Sleep(2 * time.Second)
	if winner.exited() {
		t.Fatalf("the other process exited too (%d): %s", winner.code, lastError(winner.output()))
	}
	stopWl()
	if err := <-wlDone; err != nil {
		t.Fatal(err)
	}
	if code := winner.stop(); code != 0 {
		t.Errorf("SIGTERM: exit %d: %s", code, lastError(winner.output()))
	}
	direct := []string{"ingest", "--source", src.url, "--lake", lake, "--catch-up"}
	if code, out := runOnce(t, "inter", env, 2*time.Minute, direct...); code != 0 {
		t.Fatalf("catch-up exited %d: %s", code, lastError(out))
	}
	cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
	rep, err := Check(ctx, cat, src.conn(t), "inter", tables, wl.Committed())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("BUG: two processes started together: %d of %d source rows missing from the lake, %d wrong, %d changes missing: %v",
			rep.RowsLost, rep.SourceRows, rep.RowsWrong, rep.ChangesMissing, err)
	}
}
