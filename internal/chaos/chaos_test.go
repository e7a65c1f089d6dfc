package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestChaosFaults streams a workload into an S3 lake through the cdclake
// binary while it is killed at every phase of its work, PostgreSQL is
// restarted, stopped and its walsender terminated, and S3 answers with
// errors, slowly, resets connections or never answers; then checks the
// lake against the source and the workload's log. CDCLAKE_CHAOS_SCALE
// multiplies the faults, rows and running time.
func TestChaosFaults(t *testing.T) {
	bin := cdclakeBin(t)
	rng := rand.New(rand.NewPCG(seed(t), 7))
	src := startSource(t, "chaos", map[string]string{"logical_decoding_work_mem": "64kB"})
	tables := []string{"accounts", "orders"}
	wl := &Workload{URL: src.admin, Tables: tables, Workers: 2, Seed: rng.Uint64(),
		InitialRows: 50_000 * scale, TxnRate: 40, LargeProb: 0.01, LargeRows: 1500, Log: suiteLog}
	ctx := context.Background()
	if err := wl.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	src.publish(t, tables...)
	srv := s3Server(t)
	px := startProxy(t, srv, rng.Uint64())
	catPath := filepath.Join(t.TempDir(), "catalog.db")
	const lakeURL = "s3://lake/chaos"
	// a memory budget of 16 MiB writes large transactions in partial
	// batches of 1 MiB (a sixteenth, at least 1 MiB), which the wide ones
	// of the workload (2 MB) reach
	args := []string{"ingest", "--source", src.url, "--lake", lakeURL, "--catalog", catPath, "--flush-interval", "200ms",
		"--memory-budget", "16777216"}
	env := childEnv(t, srv, px.URL)
	ph := &phases{changed: make(chan struct{})}
	sup := &Supervisor{Name: "ingest", Path: bin, Args: args, Env: env, Log: suiteLog, OnLine: ph.line}
	supCtx, stopSup := context.WithCancel(ctx)
	supDone := make(chan Exit, 1)
	go func() { supDone <- sup.Run(supCtx) }()
	var lastRun Exit
	stopSupervisor := sync.OnceFunc(func() {
		stopSup()
		lastRun = <-supDone
	})
	defer stopSupervisor()

	// the workload starts once the slot exists, so that every transaction
	// it commits streams (those before would be in the snapshot only)
	waitSlot(t, src, "cdclake_chaos")
	wlCtx, stopWl := context.WithCancel(ctx)
	wlDone := make(chan error, 1)
	go func() { wlDone <- wl.Run(wlCtx) }()

	cat := openCatalog(t, catPath, lakeURL, srv)
	inv := &invariant{src: src, cat: cat, source: "chaos", slot: "cdclake_chaos"}
	invCtx, stopInv := context.WithCancel(ctx)
	invDone := make(chan struct{})
	go func() { defer close(invDone); inv.run(invCtx) }()

	r := &chaosRun{t: t, rng: rng, sup: sup, px: px, ph: ph, src: src, cat: cat, kills: map[string]int{}, other: map[string]int{}}
	started := time.Now()
	for _, step := range r.plan(scale) {
		step()
		if t.Failed() {
			break
		}
	}
	px.Clear()
	t.Logf("faults done after %s", time.Since(started).Round(time.Second))

	// quiet: the workload stops, the running process catches up and stops
	// cleanly on SIGTERM, and a catch-up run commits the rest
	stopWl()
	if err := <-wlDone; err != nil {
		t.Fatalf("workload: %v", err)
	}
	for i := 0; ; i++ { // a run that stays up (a fault's exit may be on its way)
		r.progress("after the workload stopped")
		gen := sup.Running()
		time.Sleep(2 * time.Second)
		if gen != 0 && sup.Running() == gen {
			break
		}
		if i == 5 {
			t.Fatalf("cdclake does not stay up after the faults: %v", lastExits(sup.Exits(), 5))
		}
	}
	stopSupervisor()
	if !lastRun.Stopped || lastRun.Code != 0 {
		t.Errorf("cdclake exited with code %d (%q, stopped by SIGTERM: %v), want a clean stop on SIGTERM", lastRun.Code, lastRun.Err, lastRun.Stopped)
	}
	stopInv()
	<-invDone
	code, out := runOnce(t, "catch-up", env, 3*time.Minute, append(args, "--catch-up")...)
	if code != 0 {
		t.Fatalf("catch-up after the faults exited %d: %s", code, lastError(out))
	}

	conn := src.conn(t)
	rep, err := Check(ctx, cat, conn, "chaos", tables, wl.Committed())
	if err != nil {
		t.Fatal(err)
	}
	ws := wl.Stats()
	exits := sup.Exits()
	t.Logf("workload: %+v", ws)
	t.Logf("kills by phase: %v; other faults: %v; S3 faults by request: %v; S3 requests: %v", r.kills, r.other, px.Injected(), px.Requests())
	t.Logf("cdclake runs: %d; exits by cause: %v", len(exits), exitCauses(exits))
	t.Logf("check: %+v", rep)
	t.Logf("ack never past the lake's watermark: %d samples", inv.sampleCount())
	for _, e := range exits {
		if strings.Contains(e.Err, "panic") {
			t.Errorf("run %d panicked: %s", e.Gen, e.Err)
		}
	}
	if lines := suiteLogPanics(); len(lines) > 0 {
		t.Errorf("panics in cdclake's output: %q", lines)
	}
	for _, v := range inv.violations() {
		t.Error(v)
	}
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	verifyFiles(t, cat, "chaos", tables)

	kills := 0
	for _, n := range r.kills {
		kills += n
	}
	if kills < 20*scale {
		t.Errorf("%d kills, want at least %d", kills, 20*scale)
	}
	results.fault("kill9", kills)
	// large transactions staged in partial batches, committed with the
	// batch that ends them, under the faults
	if p := ph.now().partial; p == 0 {
		t.Errorf("no partial batch written (%d large transactions): the workload does not reach the partial batches", ws.Large)
	} else {
		t.Logf("partial batches written: %d", p)
	}
	for k, n := range r.other {
		if k != "ack-lost" {
			results.fault(k, n)
		}
	}
	for k, n := range px.Injected() {
		results.fault(string(k), n)
	}
	results.add("transactions", rep.Txns)
	results.add("changes", rep.Changes)
	results.add("rows", rep.SourceRows)
	results.add("changelog_rows", rep.ChangelogRows)
	results.add("lost", rep.Lost())
	results.add("duplicates", rep.Duplicates)
	results.add("repeated", rep.RepeatedRows)
	results.add("phantoms", rep.Phantoms)
	found, objects := secretsAtRest(t, srv, catPath, catPath+"-wal")
	t.Logf("searched %d lake objects and the catalog for the secrets", objects)
	for _, f := range found {
		t.Errorf("a secret is stored in %s", f)
	}
	results.add("secrets", len(found))
	results.add("compacted_rows", compareCompacted(t, cat, conn, env, []string{"--lake", lakeURL, "--catalog", catPath}, "chaos", tables))
}

// chaosRun drives the faults of TestChaosFaults.
type chaosRun struct {
	t     *testing.T
	rng   *rand.Rand
	sup   *Supervisor
	px    *Proxy
	ph    *phases
	src   *source
	cat   *catalog.Catalog
	kills map[string]int // kill -9 by the phase it hit
	other map[string]int // other faults
}

// plan returns the faults in a random order, the snapshot kills first.
func (r *chaosRun) plan(scale int) []func() {
	var steps []func()
	for range scale {
		for _, k := range []struct {
			phase string
			n     int
		}{{"upload", 4}, {"manifest", 3}, {"metadata", 3}, {"catalog-db", 4}, {"after-watermark", 4}, {"random", 3}} {
			for range k.n {
				steps = append(steps, func() { r.kill(k.phase) })
			}
		}
		s3 := func(f Fault, d time.Duration) func() { return func() { r.s3Window(f, d) } }
		flush := []Class{ClassData, ClassManifest, ClassMetadata}
		steps = append(steps,
			func() { r.pgRestart(0) },
			func() { r.pgRestart(3 * time.Second) },
			r.walsenderCut, r.walsenderCut,
			s3(Fault{Kind: Fault500, Prob: 0.3}, 3*time.Second),
			s3(Fault{Kind: Fault503, Prob: 0.5}, 3*time.Second),
			s3(Fault{Kind: FaultSlow, Delay: 1500 * time.Millisecond, Classes: flush}, 5*time.Second),
			s3(Fault{Kind: FaultReset, Count: 3, Classes: []Class{ClassData, ClassMetadata}}, 5*time.Second),
			s3(Fault{Kind: FaultHang, Count: 1, Delay: 8 * time.Second, Classes: []Class{ClassData}}, 10*time.Second),
			s3(Fault{Kind: FaultHang, Count: 1, Delay: 8 * time.Second, Classes: []Class{ClassMetadata}}, 10*time.Second),
		)
	}
	r.rng.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
	// the initial snapshot, then the reload a killed snapshot leads to
	return append([]func(){func() { r.kill("snapshot") }, func() { r.kill("snapshot") }}, steps...)
}

// kill kills cdclake with SIGKILL at the given phase of its work:
//
//   - snapshot: while it copies the existing rows (a random moment, or
//     while one of the snapshot's files is uploaded);
//   - upload: while a Parquet file of a flush is in flight;
//   - manifest, metadata: while the Iceberg commit writes its manifests
//     or the table's new metadata.json;
//   - catalog-db: just after the metadata.json is written, when the SQL
//     catalog's pointer is switched;
//   - after-watermark: once a flush is committed and its watermark
//     written, around the acknowledgement to PostgreSQL;
//   - random: at a random moment of streaming.
//
// A phase that does not come within 15 s falls back to a random kill.
func (r *chaosRun) kill(phase string) {
	t := r.t
	if phase != "snapshot" {
		r.progress("before a kill at " + phase)
	}
	hit := ""
	fired := make(chan string, 1)
	killNow := func(name string) {
		if r.sup.Kill() {
			select {
			case fired <- name:
			default:
			}
		}
	}
	forward := r.rng.IntN(2) == 0 // whether the request in flight still reaches S3
	var disarm func()
	switch phase {
	case "snapshot":
		if !r.ph.wait(15*time.Second, func(s phaseState) bool { return s.state == "snapshot" }) {
			break
		}
		if r.rng.IntN(2) == 0 {
			time.Sleep(time.Duration(r.rng.IntN(300)) * time.Millisecond)
			if r.ph.now().state == "snapshot" {
				killNow("snapshot")
			}
		} else {
			disarm = r.px.Arm(ClassData, false, func() bool {
				if r.ph.now().state == "snapshot" {
					killNow("snapshot (upload)")
				} else {
					killNow("upload")
				}
				return forward
			})
		}
	case "upload", "manifest", "metadata":
		class := map[string]Class{"upload": ClassData, "manifest": ClassManifest, "metadata": ClassMetadata}[phase]
		disarm = r.px.Arm(class, false, func() bool { killNow(phase); return forward })
	case "catalog-db":
		delay := time.Duration(r.rng.IntN(3000)) * time.Microsecond
		disarm = r.px.Arm(ClassMetadata, true, func() bool {
			go func() {
				time.Sleep(delay)
				killNow(phase)
			}()
			return true
		})
	case "after-watermark":
		start := r.ph.now()
		if r.ph.wait(15*time.Second, func(s phaseState) bool { return s.gen == start.gen && s.flushes > start.flushes }) {
			killNow(phase)
		}
	case "random":
		time.Sleep(time.Duration(r.rng.IntN(1500)) * time.Millisecond)
		killNow(phase)
	}
	select {
	case hit = <-fired:
	case <-time.After(15 * time.Second):
	}
	if disarm != nil {
		disarm()
	}
	if hit == "" {
		hit = "random (no " + phase + " within 15 s)"
		if !r.sup.Kill() {
			t.Logf("kill at %s: no process running", phase)
			return
		}
	}
	r.kills[hit]++
	if hit == "after-watermark" {
		// did the acknowledgement reach the slot before the kill?
		time.Sleep(300 * time.Millisecond)
		confirmed, _, err := r.src.slot("cdclake_chaos")
		rec, err2 := r.cat.Source(context.Background(), "chaos")
		if err == nil && err2 == nil && confirmed < rec.LSN {
			r.other["ack-lost"]++ // not a fault of its own: the state the kill left
		}
	}
}

// pgRestart stops PostgreSQL (immediate mode: a crash for the server),
// leaves it down for down, and starts it again.
func (r *chaosRun) pgRestart(down time.Duration) {
	r.progress("before a PostgreSQL restart")
	r.src.pg.Stop()
	time.Sleep(down)
	if err := r.src.pg.Restart(); err != nil {
		r.t.Fatalf("restart PostgreSQL: %v", err)
	}
	if down > 0 {
		r.other["pg-stop"]++
	} else {
		r.other["pg-restart"]++
	}
}

// walsenderCut terminates the walsender serving cdclake.
func (r *chaosRun) walsenderCut() {
	r.progress("before a walsender cut")
	var n int
	err := r.src.pg.QueryRow(r.src.db, `SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots
		WHERE slot_name = 'cdclake_chaos' AND active_pid IS NOT NULL`, &n)
	if err != nil {
		r.t.Fatalf("terminate walsender: %v", err)
	}
	if n > 0 {
		r.other["walsender-cut"]++
	}
}

// s3Window installs an S3 fault for d.
func (r *chaosRun) s3Window(f Fault, d time.Duration) {
	r.progress("before S3 fault " + string(f.Kind))
	remove := r.px.Inject(f)
	time.Sleep(d)
	remove()
}

// progress waits until the current run of cdclake streams and has
// committed a flush, and fails the test when that takes over 60 s.
func (r *chaosRun) progress(what string) {
	r.t.Helper()
	start := r.ph.now()
	ok := r.ph.wait(60*time.Second, func(s phaseState) bool {
		return s.state == "streaming" && s.flushes > start.flushes && r.sup.Running() == s.gen
	})
	if !ok {
		r.t.Errorf("no flush committed in 60 s %s (state %+v, exits %v)", what, r.ph.now(), lastExits(r.sup.Exits(), 5))
	}
}

// phases follows a supervised cdclake through the lines it prints.
type phases struct {
	mu      sync.Mutex
	cur     phaseState
	changed chan struct{}
}

type phaseState struct {
	gen     int    // the run that printed the last line
	state   string // start, snapshot, streaming
	flushes int    // "flushed" lines of every run
	partial int    // "partial batch written" lines of every run
}

func (p *phases) line(gen int, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.cur.gen {
		p.cur.gen, p.cur.state = gen, "start"
	}
	switch {
	case strings.Contains(line, `msg="snapshot started"`):
		p.cur.state = "snapshot"
	case strings.Contains(line, `msg="snapshot done"`):
		p.cur.state = "start"
	case strings.Contains(line, "msg=streaming"):
		p.cur.state = "streaming"
	case strings.Contains(line, "msg=flushed"):
		p.cur.flushes++
	case strings.Contains(line, `msg="partial batch written"`):
		p.cur.partial++
	default:
		return
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *phases) now() phaseState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// wait waits up to d for cond and reports whether it came true.
func (p *phases) wait(d time.Duration, cond func(phaseState) bool) bool {
	deadline := time.After(d)
	for {
		p.mu.Lock()
		cur, ch := p.cur, p.changed
		p.mu.Unlock()
		if cond(cur) {
			return true
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return false
		}
	}
}

// invariant samples, while faults are injected, that the slot is never
// acknowledged past the lake's watermark.
type invariant struct {
	src          *source
	cat          *catalog.Catalog
	source, slot string

	mu      sync.Mutex
	bad     []string
	samples int
}

func (v *invariant) run(ctx context.Context) {
	for ctx.Err() == nil {
		// the slot first: the watermark read after it can only be higher
		confirmed, _, err := v.src.slot(v.slot)
		if err == nil && confirmed > 0 {
			rec, err := v.cat.Source(ctx, v.source)
			v.mu.Lock()
			v.samples++
			if err == nil && confirmed > rec.LSN {
				v.bad = append(v.bad, fmt.Sprintf("slot confirmed LSN %X ahead of the lake's watermark %X", confirmed, rec.LSN))
			}
			v.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (v *invariant) sampleCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.samples
}

func (v *invariant) violations() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bad
}

var lsnInErr = regexp.MustCompile(`[0-9A-F]+/[0-9A-F]+|pid \d+|\d+\.\d+\.\d+\.\d+:\d+|"[^"]*"`)

// exitCauses groups the exits by their error, numbers and names blanked.
func exitCauses(exits []Exit) map[string]int {
	out := map[string]int{}
	for _, e := range exits {
		cause := "killed"
		if !e.Killed {
			cause = lsnInErr.ReplaceAllString(e.Err, "_")
			if len(cause) > 90 {
				cause = cause[:90]
			}
			if cause == "" {
				cause = fmt.Sprintf("code %d %s", e.Code, e.Signal)
			}
		}
		out[cause]++
	}
	return out
}

func lastExits(exits []Exit, n int) []Exit {
	if len(exits) > n {
		return exits[len(exits)-n:]
	}
	return exits
}

// suiteLogPanics returns lines of the suite log that show a Go panic.
func suiteLogPanics() []string {
	lines, _ := suiteLog.Grep("panic:", "fatal error:", "goroutine ")
	return lines
}

// verifyFiles runs VerifyTable on each changelog table.
func verifyFiles(t *testing.T, cat *catalog.Catalog, source string, tables []string) int {
	t.Helper()
	n := 0
	for _, name := range tables {
		tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent(source, "public", name))
		if err != nil {
			t.Fatal(err)
		}
		checks, err := VerifyTable(context.Background(), tbl)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			n++
			if c.Err != nil {
				t.Errorf("%s: data file %s: %v", name, c.Path, c.Err)
			}
		}
	}
	return n
}
