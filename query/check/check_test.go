package check

import (
	"strings"
	"testing"
	"time"

	"github.com/cdclake/cdclake/catalog"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, text string
		want       Check
		err        string
	}{
		{name: "a", text: "-- schedule: 30s\n-- threshold: 3\n-- description: d e\nSELECT 1\n",
			want: Check{Name: "a", SQL: "-- schedule: 30s\n-- threshold: 3\n-- description: d e\nSELECT 1", Schedule: 30 * time.Second, Threshold: 3, Description: "d e"}},
		{name: "defaults", text: "SELECT 1", want: Check{Name: "defaults", SQL: "SELECT 1", Schedule: DefaultSchedule}},
		{name: "after_sql", text: "SELECT 1\n-- threshold: 5", want: Check{Name: "after_sql", SQL: "SELECT 1\n-- threshold: 5", Schedule: DefaultSchedule}},
		{name: "plain-comment", text: "-- Note: rows are orders\n-- threshold: 0\nSELECT 1",
			want: Check{Name: "plain-comment", SQL: "-- Note: rows are orders\n-- threshold: 0\nSELECT 1", Schedule: DefaultSchedule}},
		{name: "negative", text: "-- threshold: -1\nSELECT 1", err: "threshold"},
		{name: "words", text: "-- threshold: none\nSELECT 1", err: "threshold"},
		{name: "fast", text: "-- schedule: 10ms\nSELECT 1", err: "at least 1s"},
		{name: "empty", text: "-- threshold: 1\n", err: "no SQL"},
		{name: "Bad Name", text: "SELECT 1", err: "check name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.name, tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if k := ResultKey("late", time.Date(2026, 3, 1, 10, 4, 5, 0, time.FixedZone("x", 3600))); k != "checks/late/run=20260301T090405Z/result.parquet" {
		t.Errorf("ResultKey = %s", k)
	}
}

func TestLoadShipped(t *testing.T) {
	list, err := Load("../../checks")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 3 {
		t.Fatalf("%d shipped checks", len(list))
	}
}

func TestWithCTE(t *testing.T) {
	const cte = "x AS (SELECT 1 AS a)"
	tests := []struct{ sql, want string }{
		{"SELECT * FROM x", "WITH x AS (SELECT 1 AS a)\nSELECT * FROM x"},
		{"-- schedule: 1m\n/* note */ SELECT * FROM x", "WITH x AS (SELECT 1 AS a)\nSELECT * FROM x"},
		{"-- c\nwith y AS (SELECT 2) SELECT * FROM x, y", "with x AS (SELECT 1 AS a), y AS (SELECT 2) SELECT * FROM x, y"},
		{"WITH RECURSIVE\n  y(n) AS (SELECT 1) SELECT * FROM y", "WITH RECURSIVE\n  x AS (SELECT 1 AS a), y(n) AS (SELECT 1) SELECT * FROM y"},
		{"SELECT 1 AS without", "WITH x AS (SELECT 1 AS a)\nSELECT 1 AS without"},
	}
	for _, tc := range tests {
		if got := withCTE(tc.sql, cte); got != tc.want {
			t.Errorf("withCTE(%q)\n= %q\nwant %q", tc.sql, got, tc.want)
		}
	}
	for sql, want := range map[string]bool{
		"SELECT * FROM cdclake_sources":       true,
		"select * from CDCLAKE_SOURCES s":     true,
		"SELECT * FROM my_cdclake_sources_v2": false,
		"SELECT 1":                            false,
	} {
		if usesSources(sql) != want {
			t.Errorf("usesSources(%q) != %v", sql, want)
		}
	}
}

func TestSourcesCTE(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	got := sourcesCTE([]catalog.Source{
		{Name: "it's", LSN: 42, CommitTime: now.Add(-90 * time.Second), UpdatedAt: now.Add(-time.Second)},
		{Name: "new", LSN: 7},
		{Name: "quiet", LSN: 9, CommitTime: now.Add(-10 * time.Hour), CaughtUpAt: now.Add(-60 * time.Second)}, // a nightly catch-up's proof
	}, now)
	for _, want := range []string{
		"cdclake_sources AS (SELECT 'it''s'::VARCHAR AS source, 42::UBIGINT AS watermark_lsn, '2026-03-01T09:58:30Z'::TIMESTAMPTZ AS commit_time",
		"'2026-03-01T09:58:30Z'::TIMESTAMPTZ AS complete_through, 90::DOUBLE AS lag_seconds UNION ALL SELECT 'new'::VARCHAR",
		"NULL::TIMESTAMPTZ AS commit_time, NULL::TIMESTAMPTZ AS updated_at, NULL::TIMESTAMPTZ AS complete_through, NULL::DOUBLE AS lag_seconds UNION ALL",
		"'2026-03-01T09:59:00Z'::TIMESTAMPTZ AS complete_through, 60::DOUBLE AS lag_seconds)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("sourcesCTE =\n%s\nlacks %s", got, want)
		}
	}
	if got := sourcesCTE(nil, now); !strings.HasSuffix(got, "WHERE false)") {
		t.Errorf("no sources: %s", got)
	}
}
