package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exit is how one run of a supervised process ended.
type Exit struct {
	Gen     int           // the run's number, from 1
	Code    int           // exit code; -1 when killed by a signal
	Signal  string        // the signal that killed it, if any
	Err     string        // the last line starting with "cdclake: "
	Ran     time.Duration // how long it ran
	Killed  bool          // the supervisor killed it on purpose
	Stopped bool          // Run's context ended it (SIGTERM)
}

// Supervisor runs a command the way a service manager does: it restarts
// it whenever it exits, after a backoff that doubles (from MinBackoff to
// MaxBackoff) while runs keep failing quickly and resets after a run of
// StableAfter. Every line the process prints goes to Log and OnLine.
type Supervisor struct {
	Name string   // prefix of the recorded lines
	Path string   // the binary
	Args []string // its arguments
	Env  []string // its whole environment
	Log  *Recorder
	// OnLine, when set, sees every line with the number of the run that
	// printed it. It must not block.
	OnLine func(gen int, line string)

	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StopTimeout is how long Run waits after SIGTERM before SIGKILL
	// (default 30 s).
	StopTimeout time.Duration

	mu      sync.Mutex
	cmd     *exec.Cmd
	gen     int
	killing bool
	exits   []Exit
}

// Run keeps the process running until ctx is done, then stops it with
// SIGTERM (SIGKILL after StopTimeout) and returns how that last run
// ended; Exit.Signal is "killed" when SIGTERM did not stop it. When ctx
// ends while no process runs (during a backoff), the returned Exit is the
// last one, with Stopped false.
func (s *Supervisor) Run(ctx context.Context) Exit {
	backoff := s.minBackoff()
	for {
		start := time.Now()
		exit, stopped := s.runOnce(ctx)
		if stopped {
			return exit
		}
		if exit.Ran >= s.stableAfter() || exit.Killed {
			backoff = s.minBackoff()
		}
		select {
		case <-ctx.Done():
			return exit
		case <-time.After(backoff):
		}
		if time.Since(start) < s.stableAfter() && !exit.Killed {
			backoff = min(2*backoff, s.maxBackoff())
		}
	}
}

func (s *Supervisor) minBackoff() time.Duration {
	if s.MinBackoff > 0 {
		return s.MinBackoff
	}
	return 100 * time.Millisecond
}

func (s *Supervisor) maxBackoff() time.Duration {
	if s.MaxBackoff > 0 {
		return s.MaxBackoff
	}
	return 2 * time.Second
}

func (s *Supervisor) stableAfter() time.Duration {
	if s.StableAfter > 0 {
		return s.StableAfter
	}
	return 5 * time.Second
}

// runOnce runs the process once; stopped reports that ctx ended the run.
func (s *Supervisor) runOnce(ctx context.Context) (Exit, bool) {
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	start := time.Now()
	var lastErr string // read once waited yields
	waited, err := startLogged(cmd, s.Log, fmt.Sprintf("%s#%d", s.Name, gen), func(line string) {
		if e, ok := strings.CutPrefix(line, "cdclake: "); ok {
			lastErr = e
		}
		if s.OnLine != nil {
			s.OnLine(gen, line)
		}
	})
	if err != nil {
		exit := Exit{Gen: gen, Code: -1, Err: err.Error()}
		s.record(exit)
		return exit, ctx.Err() != nil
	}
	s.mu.Lock()
	s.cmd, s.killing = cmd, false
	s.mu.Unlock()

	stopped := false
	select {
	case err = <-waited:
	case <-ctx.Done():
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		timeout := s.StopTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		select {
		case err = <-waited:
		case <-time.After(timeout):
			s.Log.Line(s.Name, fmt.Sprintf("supervisor: no exit %s after SIGTERM, sending SIGKILL", timeout))
			cmd.Process.Kill()
			err = <-waited
		}
	}
	s.mu.Lock()
	killed := s.killing
	s.cmd = nil
	s.mu.Unlock()
	exit := Exit{Gen: gen, Ran: time.Since(start), Killed: killed, Err: lastErr, Stopped: stopped}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		exit.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			exit.Signal = ws.Signal().String()
		}
	}
	s.record(exit)
	return exit, stopped
}

func (s *Supervisor) record(e Exit) {
	s.mu.Lock()
	s.exits = append(s.exits, e)
	s.mu.Unlock()
	s.Log.Line(s.Name, fmt.Sprintf("supervisor: run %d ended after %s: code %d signal %q killed %v err %q",
		e.Gen, e.Ran.Round(time.Millisecond), e.Code, e.Signal, e.Killed, e.Err))
}

// Kill sends SIGKILL to the running process and reports whether one ran.
func (s *Supervisor) Kill() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil || s.killing {
		return false
	}
	s.killing = true
	return s.cmd.Process.Kill() == nil
}

// Running reports the number of the current run, 0 when none runs.
func (s *Supervisor) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.gen
}

// Exits returns how every run so far ended.
func (s *Supervisor) Exits() []Exit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exit(nil), s.exits...)
}

// startLogged starts cmd with its output (stdout and stderr in one pipe,
// so their lines keep their order) going line by line to log, as name,
// and to onLine. The channel yields cmd.Wait's error once every line has
// been read.
func startLogged(cmd *exec.Cmd, log *Recorder, name string, onLine func(string)) (<-chan error, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	waited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			log.Line(name, sc.Text())
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		r.Close()
		waited <- cmd.Wait()
	}()
	return waited, nil
}
