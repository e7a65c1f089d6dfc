package chaos

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hangBound is how long ingest may sit on an S3 request that never
// answers before it must either give the request up or exit (so that its
// service manager restarts it).
const hangBound = 25 * time.Second

// TestChaosS3RequestHangs makes one Parquet upload of a flush hang for
// good (the server accepted the connection and never answers: a dead load
// balancer, a black-holed route) and checks that ingest does not wait for
// it forever. When the binary has a --flush-timeout flag the test uses
// 5 s.
func TestChaosS3RequestHangs(t *testing.T) {
	ctx := context.Background()
	src := startSource(t, "hang", nil)
	tables := []string{"items"}
	wl := &Workload{URL: src.admin, Tables: tables, InitialRows: 100}
	if err := wl.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	src.publish(t, tables...)
	srv := s3Server(t)
	px := startProxy(t, srv, 1)
	catPath := filepath.Join(t.TempDir(), "catalog.db")
	args := []string{"ingest", "--source", src.url, "--lake", "s3://lake/hang", "--catalog", catPath, "--flush-interval", "200ms"}
	help, _ := exec.Command(cdclakeBin(t), "ingest", "-h").CombinedOutput()
	if strings.Contains(string(help), "-flush-timeout") {
		args = append(args, "--flush-timeout", "5s")
	}
	ph := &phases{changed: make(chan struct{})}
	sup := &Supervisor{Name: "hang", Path: cdclakeBin(t), Args: args, Env: childEnv(t, srv, px.URL), Log: suiteLog, OnLine: ph.line,
		StopTimeout: 5 * time.Second}
	supCtx, stop := context.WithCancel(ctx)
	done := make(chan Exit, 1)
	go func() { done <- sup.Run(supCtx) }()
	stopped := false
	stopSup := func() Exit {
		if stopped {
			return Exit{}
		}
		stopped = true
		stop()
		return <-done
	}
	defer stopSup()

	if !ph.wait(60*time.Second, func(s phaseState) bool { return s.state == "streaming" }) {
		t.Fatalf("not streaming within 60 s: %v", sup.Exits())
	}
	src.pg.Exec(t, "hang", "UPDATE items SET ver = ver + 1 WHERE id = 1")
	if !ph.wait(60*time.Second, func(s phaseState) bool { return s.flushes > 0 }) {
		t.Fatalf("no flush within 60 s: %v", sup.Exits())
	}
	px.Inject(Fault{Kind: FaultHang, Count: 1, Classes: []Class{ClassData}}) // forever
	before := ph.now()
	runs := len(sup.Exits())
	src.pg.Exec(t, "hang", "UPDATE items SET ver = ver + 1 WHERE id = 2")
	start := time.Now()
	ok := ph.wait(hangBound, func(s phaseState) bool {
		return s.flushes > before.flushes || len(sup.Exits()) > runs
	})
	if !ok {
		last := stopSup()
		t.Fatalf("BUG: one S3 request that never answers stalls ingest: no flush committed and no exit %s after it hung (the process stays up, acknowledges nothing more, and its service manager sees nothing wrong); SIGTERM then: exit code %d, signal %q (killed means it ignored SIGTERM for 5 s)",
			hangBound, last.Code, last.Signal)
	}
	t.Logf("ingest noticed the hung request after %s (exits %v)", time.Since(start).Round(time.Millisecond), lastExits(sup.Exits(), 3))
	if !ph.wait(60*time.Second, func(s phaseState) bool { return s.flushes > before.flushes }) {
		t.Fatalf("no flush within 60 s after the hung request")
	}
}
