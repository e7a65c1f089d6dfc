package check

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cdclake/cdclake/query"
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

// DefaultSchedule applies to a check file without a schedule header.
const DefaultSchedule = time.Minute

// Parse reads a check from its file name (without .sql) and content.
// Header comments are "-- schedule: D", "-- threshold: N" and
// "-- description: text" lines before the first SQL line; other comments
// are kept as they are.
func Parse(name, text string) (Check, error) {
	f, err := query.ParseSQLFile("check", name, text)
	c := Check{Name: name, SQL: f.SQL, Description: f.Headers["description"]}
	if err != nil {
		return c, err
	}
	if c.Schedule, err = f.Schedule("check", DefaultSchedule); err != nil {
		return c, err
	}
	if v, ok := f.Headers["threshold"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("check %s: threshold %q: use a number of rows, 0 or more", name, v)
		}
		c.Threshold = n
	}
	return c, nil
}

// Load reads every *.sql file of dir, ordered by name.
func Load(dir string) ([]Check, error) { return query.LoadSQLFiles("check", dir, Parse) }

// ResultKey is the lake key of a check's violating rows found at t:
// checks/<name>/run=<UTC time, basic ISO 8601>/result.parquet.
func ResultKey(name string, t time.Time) string {
	return fmt.Sprintf("checks/%s/run=%s/result.parquet", name, t.UTC().Format("20060102T150405Z"))
}
