package kpi

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// KPI is one named query from a .sql file of the KPI folder.
type KPI struct {
	// Name is the file name without .sql: lowercase letters, digits, _ and -.
	Name string
	// SQL is the file's content: one SELECT.
	SQL string
	// Schedule is how often the KPI runs, from a "-- schedule: 1m" header
	// comment (a Go duration, at least 1s).
	Schedule time.Duration
	// Description is the optional "-- description: ..." header comment.
	Description string
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// DefaultSchedule applies to a KPI file without a schedule header.
const DefaultSchedule = time.Hour

// Parse reads a KPI from its file name (without .sql) and content. Header
// comments are "-- schedule: D" and "-- description: text" lines before
// the first SQL line; other comments are kept as they are.
func Parse(name, text string) (KPI, error) {
	k := KPI{Name: name, SQL: strings.TrimSpace(text), Schedule: DefaultSchedule}
	if !nameRE.MatchString(name) {
		return k, fmt.Errorf("kpi name %q: use lowercase letters, digits, _ and -", name)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sql := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		c, ok := strings.CutPrefix(line, "--")
		if !ok {
			sql = true // the SQL starts
			break
		}
		key, val, ok := strings.Cut(c, ":")
		if !ok {
			continue // a plain comment
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "schedule":
			d, err := time.ParseDuration(val)
			if err != nil || d < time.Second {
				return k, fmt.Errorf("kpi %s: schedule %q: use a duration of at least 1s such as 30s, 5m, 1h", name, val)
			}
			k.Schedule = d
		case "description":
			k.Description = val
		}
	}
	if !sql {
		return k, fmt.Errorf("kpi %s: no SQL", name)
	}
	return k, nil
}

// Load reads every *.sql file of dir, ordered by name.
func Load(dir string) ([]KPI, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list kpis: %w", err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("kpi folder: %w", err)
	}
	sort.Strings(paths)
	var out []KPI
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read kpi: %w", err))
			continue
		}
		k, err := Parse(strings.TrimSuffix(filepath.Base(p), ".sql"), string(b))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, k)
	}
	return out, errors.Join(errs...)
}

// ResultKey is the lake key of a KPI result written at t:
// kpi/<name>/run=<UTC time, basic ISO 8601>/result.parquet.
func ResultKey(name string, t time.Time) string {
	return fmt.Sprintf("kpi/%s/run=%s/result.parquet", name, t.UTC().Format("20060102T150405Z"))
}
