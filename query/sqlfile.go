package query

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// SQLFile is a named SQL file of a KPI or check folder: its header
// comments ("-- key: value" lines before the first SQL line, keys in
// lower case) and its whole text.
type SQLFile struct {
	Name    string // the file name without .sql
	SQL     string // the content, trimmed
	Headers map[string]string
}

var sqlFileName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ParseSQLFile reads a KPI's or check's file (kind names it in errors).
// Comments without a colon, and those after the SQL starts, are kept as
// part of the SQL.
func ParseSQLFile(kind, name, text string) (SQLFile, error) {
	f := SQLFile{Name: name, SQL: strings.TrimSpace(text), Headers: map[string]string{}}
	if !sqlFileName.MatchString(name) {
		return f, fmt.Errorf("%s name %q: use lowercase letters, digits, _ and -", kind, name)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		c, ok := strings.CutPrefix(line, "--")
		if !ok {
			return f, nil // the SQL starts
		}
		if key, val, ok := strings.Cut(c, ":"); ok {
			f.Headers[strings.ToLower(strings.TrimSpace(key))] = strings.TrimSpace(val)
		}
	}
	return f, fmt.Errorf("%s %s: no SQL", kind, name)
}

// Schedule reads the "schedule" header, def when there is none.
func (f SQLFile) Schedule(kind string, def time.Duration) (time.Duration, error) {
	v, ok := f.Headers["schedule"]
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("%s %s: schedule %q: use a duration of at least 1s such as 30s, 5m, 1h", kind, f.Name, v)
	}
	return d, nil
}

// LoadSQLFiles reads every *.sql file of dir, ordered by name, with
// parse; the files that do not parse are left out and their errors
// joined.
func LoadSQLFiles[T any](kind, dir string, parse func(name, text string) (T, error)) ([]T, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%s folder: %w", kind, err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	sort.Strings(paths)
	var out []T
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", kind, err))
			continue
		}
		v, err := parse(strings.TrimSuffix(filepath.Base(p), ".sql"), string(b))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, v)
	}
	return out, errors.Join(errs...)
}

// Every calls fn now and then every d until ctx is cancelled: the
// schedule of a KPI or check.
func Every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
