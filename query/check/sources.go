package check

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cdclake/cdclake/catalog"
)

// SourcesRelation is the relation a check reads the sources from, one row
// per source:
//
//	source         VARCHAR      the source name
//	watermark_lsn  UBIGINT      every change at or below it is in the lake
//	commit_time    TIMESTAMPTZ  commit time of the last transaction in the lake
//	updated_at     TIMESTAMPTZ  when ingest last wrote the watermark
//	complete_through TIMESTAMPTZ  every transaction committed before it is
//	                 in the lake: commit_time, or before the source's first
//	                 streamed transaction the time its slot was recorded
//	                 (the initial copy holds everything committed before);
//	                 later, when a catch-up proved it, the time it started
//	lag_seconds    DOUBLE       now - complete_through
//
// The runner defines it from the catalog as the check runs, as a common
// table expression in front of the check's SQL, when the SQL names it.
const SourcesRelation = "cdclake_sources"

var (
	namesSources = regexp.MustCompile(`(?i)\b` + SourcesRelation + `\b`)
	leadingWith  = regexp.MustCompile(`(?is)^with\s+(recursive\s+)?`)
)

// sourcesCTE is the definition of SourcesRelation for srcs at now.
func sourcesCTE(srcs []catalog.Source, now time.Time) string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "NULL::TIMESTAMPTZ"
		}
		return "'" + t.UTC().Format(time.RFC3339Nano) + "'::TIMESTAMPTZ"
	}
	var rows []string
	for _, s := range srcs {
		complete := s.CommitTime
		if complete.IsZero() {
			complete = s.UpdatedAt
		}
		if s.CaughtUpAt.After(complete) { // a catch-up found nothing newer
			complete = s.CaughtUpAt
		}
		lag := "NULL::DOUBLE"
		if !complete.IsZero() {
			lag = fmt.Sprintf("%g::DOUBLE", max(now.Sub(complete).Seconds(), 0))
		}
		rows = append(rows, fmt.Sprintf("SELECT '%s'::VARCHAR AS source, %d::UBIGINT AS watermark_lsn, %s AS commit_time, %s AS updated_at, %s AS complete_through, %s AS lag_seconds",
			strings.ReplaceAll(s.Name, "'", "''"), s.LSN, ts(s.CommitTime), ts(s.UpdatedAt), ts(complete), lag))
	}
	if len(rows) == 0 {
		rows = []string{"SELECT NULL::VARCHAR AS source, NULL::UBIGINT AS watermark_lsn, NULL::TIMESTAMPTZ AS commit_time, " +
			"NULL::TIMESTAMPTZ AS updated_at, NULL::TIMESTAMPTZ AS complete_through, NULL::DOUBLE AS lag_seconds WHERE false"}
	}
	return SourcesRelation + " AS (" + strings.Join(rows, " UNION ALL ") + ")"
}

// usesSources reports whether sql names SourcesRelation.
func usesSources(sql string) bool { return namesSources.MatchString(sql) }

// withCTE puts the common table expression cte in front of sql, merging
// it into the statement's own WITH clause when it has one.
func withCTE(sql, cte string) string {
	body := stripLeadingComments(sql)
	if m := leadingWith.FindString(body); m != "" {
		return m + cte + ", " + body[len(m):]
	}
	return "WITH " + cte + "\n" + body
}

// stripLeadingComments drops the whitespace and comments before the
// first token of sql.
func stripLeadingComments(sql string) string {
	for {
		sql = strings.TrimSpace(sql)
		switch {
		case strings.HasPrefix(sql, "--"):
			_, rest, ok := strings.Cut(sql, "\n")
			if !ok {
				return ""
			}
			sql = rest
		case strings.HasPrefix(sql, "/*"):
			_, rest, ok := strings.Cut(sql[2:], "*/")
			if !ok {
				return ""
			}
			sql = rest
		default:
			return sql
		}
	}
}
