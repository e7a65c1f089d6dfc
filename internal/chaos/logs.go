package chaos

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Recorder keeps every line the suite's processes print and every error
// its tests see, in a file, and looks for secrets in each line as it is
// written. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	f       *os.File
	secrets []string
	lines   int64
	bytes   int64
	leaks   []string // lines holding a secret (secret masked)
}

// NewRecorder writes to a new file at path.
func NewRecorder(path string) (*Recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create suite log: %w", err)
	}
	return &Recorder{f: f}, nil
}

// Path returns the file the lines are written to.
func (r *Recorder) Path() string { return r.f.Name() }

// Secret adds a value that must never appear in a line.
func (r *Recorder) Secret(s string) {
	if s == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.secrets {
		if x == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
}

// secretList returns the secrets added so far.
func (r *Recorder) secretList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.secrets...)
}

// Line records one line printed by source (a process or a test).
func (r *Recorder) Line(source, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines++
	r.bytes += int64(len(line))
	for _, s := range r.secrets {
		if strings.Contains(line, s) {
			r.leaks = append(r.leaks, source+": "+strings.ReplaceAll(line, s, "<SECRET>"))
		}
	}
	fmt.Fprintf(r.f, "%s | %s\n", source, line) // unbuffered: a hung test's log is whole
}

// Text records a block of text (an error message, a command's output)
// line by line.
func (r *Recorder) Text(source, text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		r.Line(source, l)
	}
}

// Stats returns the lines and bytes recorded and the lines holding a
// secret, with the secret masked.
func (r *Recorder) Stats() (lines, bytes int64, leaks []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines, r.bytes, append([]string(nil), r.leaks...)
}

// Rescan reads the whole file again and returns the lines holding any
// secret known now (secrets added after a line was written included),
// with the secrets masked.
func (r *Recorder) Rescan() ([]string, error) {
	secrets := r.secretList()
	lines, err := r.Grep(secrets...)
	for i, l := range lines {
		for _, s := range secrets {
			l = strings.ReplaceAll(l, s, "<SECRET>")
		}
		lines[i] = l
	}
	return lines, err
}

// Grep returns the recorded lines that contain any of the strings.
func (r *Recorder) Grep(any ...string) ([]string, error) {
	f, err := os.Open(r.f.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		for _, s := range any {
			if strings.Contains(sc.Text(), s) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out, sc.Err()
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
