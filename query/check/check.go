package check

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Check is one named rule from a .sql file of the check folder.
type Check struct {
	// Name is the file name without .sql: lowercase letters, digits, _ and -.
	Name string
	// SQL is the file's content: one SELECT returning the violating rows.
	SQL string
	// Schedule is how often the check runs ("-- schedule: 30s", at least 1s).
	Schedule time.Duration
	// Threshold is how many violating rows are tolerated: the check fails
	// when it returns more ("-- threshold: 0", the default).
	Threshold int64
	// Description is the optional "-- description: ..." header comment.
	Description string
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// DefaultSchedule applies to a check file without a schedule header.
const DefaultSchedule = time.Minute

// Parse reads a check from its file name (without .sql) and content.
// Header comments are "-- schedule: D", "-- threshold: N" and
// "-- description: text" lines before the first SQL line; other comments
// are kept as they are.
func Parse(name, text string) (Check, error) {
	c := Check{Name: name, SQL: strings.TrimSpace(text), Schedule: DefaultSchedule}
	if !nameRE.MatchString(name) {
		return c, fmt.Errorf("check name %q: use lowercase letters, digits, _ and -", name)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sql := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		comment, ok := strings.CutPrefix(line, "--")
		if !ok {
			sql = true
			break
		}
		key, val, ok := strings.Cut(comment, ":")
		if !ok {
			continue
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "schedule":
			d, err := time.ParseDuration(val)
			if err != nil || d < time.Second {
				return c, fmt.Errorf("check %s: schedule %q: use a duration of at least 1s such as 30s, 5m, 1h", name, val)
			}
			c.Schedule = d
		case "threshold":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return c, fmt.Errorf("check %s: threshold %q: use a number of rows, 0 or more", name, val)
			}
			c.Threshold = n
		case "description":
			c.Description = val
		}
	}
	if !sql {
		return c, fmt.Errorf("check %s: no SQL", name)
	}
	return c, nil
}

// Load reads every *.sql file of dir, ordered by name.
func Load(dir string) ([]Check, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("check folder: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("list checks: %w", err)
	}
	sort.Strings(paths)
	var out []Check
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read check: %w", err))
			continue
		}
		c, err := Parse(strings.TrimSuffix(filepath.Base(p), ".sql"), string(b))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// ResultKey is the lake key of a check's violating rows found at t:
// checks/<name>/run=<UTC time, basic ISO 8601>/result.parquet.
func ResultKey(name string, t time.Time) string {
	return fmt.Sprintf("checks/%s/run=%s/result.parquet", name, t.UTC().Format("20060102T150405Z"))
}
