package kpi

import (
	"fmt"
	"time"

	"github.com/cdclake/cdclake/query"
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

// DefaultSchedule applies to a KPI file without a schedule header.
const DefaultSchedule = time.Hour

// Parse reads a KPI from its file name (without .sql) and content. Header
// comments are "-- schedule: D" and "-- description: text" lines before
// the first SQL line; other comments are kept as they are.
func Parse(name, text string) (KPI, error) {
	f, err := query.ParseSQLFile("kpi", name, text)
	k := KPI{Name: name, SQL: f.SQL, Description: f.Headers["description"]}
	if err != nil {
		return k, err
	}
	k.Schedule, err = f.Schedule("kpi", DefaultSchedule)
	return k, err
}

// Load reads every *.sql file of dir, ordered by name.
func Load(dir string) ([]KPI, error) { return query.LoadSQLFiles("kpi", dir, Parse) }

// ResultKey is the lake key of a KPI result written at t:
// kpi/<name>/run=<UTC time, basic ISO 8601>/result.parquet.
func ResultKey(name string, t time.Time) string {
	return fmt.Sprintf("kpi/%s/run=%s/result.parquet", name, t.UTC().Format("20060102T150405Z"))
}
