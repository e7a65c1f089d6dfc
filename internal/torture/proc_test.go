package torture

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cdclakeBin builds the cdclake binary once, or returns CDCLAKE_TORTURE_BIN.
func cdclakeBin(t *testing.T, dir string) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("CDCLAKE_TORTURE_BIN"); p != "" {
			binPath = p
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(dir, "cdclake")
		out, err := exec.Command(goBin, "build", "-tags", "duckdb_arrow", "-o", binPath, "github.com/cdclake/cdclake/cmd/cdclake").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -tags duckdb_arrow ./cmd/cdclake: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc runs a cdclake command as a service manager would: restarted
// after every exit until stopped. Its output goes to a log file; the last
// lines of each exit are kept.
type proc struct {
	name string
	bin  string
	args []string
	log  *os.File

	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	killed   bool     // the current run was killed on purpose
	exits    []string // unexpected exits, with their last lines
	starts   int
	done     chan struct{}
}

func startProc(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, bin: bin, args: args, log: f, done: make(chan struct{})}
	go p.loop()
	t.Cleanup(func() { p.stop(); f.Close() })
	return p
}

func (p *proc) loop() {
	defer close(p.done)
	for {
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		cmd := exec.Command(p.bin, p.args...)
		out, _ := cmd.StderrPipe()
		cmd.Stdout = p.log
		p.cmd, p.killed = cmd, false
		p.starts++
		err := cmd.Start()
		p.mu.Unlock()
		if err != nil {
			p.note(fmt.Sprintf("start: %v", err))
			time.Sleep(time.Second)
			continue
		}
		last := lines(out, p.log, 8)()
		err = cmd.Wait()
		p.mu.Lock()
		if !p.killed && !p.stopping && err != nil {
			p.exits = append(p.exits, fmt.Sprintf("%s exited (%v): %s", p.name, err, strings.Join(last, " | ")))
		}
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (p *proc) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exits = append(p.exits, s)
}

// lines copies r to log and returns a function giving its last n lines
// once r is drained.
func lines(r interface{ Read([]byte) (int, error) }, log *os.File, n int) func() []string {
	var mu sync.Mutex
	var last []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			fmt.Fprintln(log, l)
			mu.Lock()
			last = append(last, l)
			if len(last) > n {
				last = last[1:]
			}
			mu.Unlock()
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), last...)
	}
}

// kill sends SIGKILL to the running process; the loop restarts it.
func (p *proc) kill() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return false
	}
	p.killed = true
	return p.cmd.Process.Signal(syscall.SIGKILL) == nil
}

// stop ends the process with SIGTERM (a clean stop) and the loop.
func (p *proc) stop() {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.stopping = true
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.mu.Lock()
		_ = p.cmd.Process.Kill()
		p.mu.Unlock()
		<-p.done
	}
}

// takeExits returns and forgets the unexpected exits so far.
func (p *proc) takeExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.exits
	p.exits = nil
	return e
}

// runOnce runs a cdclake command to its end and returns its exit error
// and last lines.
func runOnce(ctx context.Context, log *os.File, bin string, args ...string) (error, []string) {
	cmd := exec.CommandContext(ctx, bin, args...)
	out, _ := cmd.StderrPipe()
	cmd.Stdout = log
	fmt.Fprintf(log, "--- %s\n", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return err, nil
	}
	last := lines(out, log, 8)()
	return cmd.Wait(), last
}
