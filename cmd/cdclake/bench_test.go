package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestBenchScenariosTiny runs every scenario once at a tiny size to prove
// the harness works and that each measured what it claims; the timings
// are not looked at.
func TestBenchScenariosTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := runBench(ctx, []string{"--rows", "3000", "--updates", "1000", "--rate", "500", "--duration", "3s",
		"--changes", "1000", "--flushes", "120", "all"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 5 { // stream and snapshot with their references, big-transaction
		t.Errorf("%d throughput results, want 5", len(rep.Results))
	}

	// query: the scenario fails when a lake answer differs from PostgreSQL's
	q := rep.Query
	if q == nil || len(q.Queries) != 4 {
		t.Fatalf("query report %+v, want 4 queries", q)
	}
	for _, r := range q.Queries {
		if r.Rows == 0 || r.PG <= 0 || r.Lake <= 0 || r.Changelog <= 0 {
			t.Errorf("query %q: %d rows, PostgreSQL %s, lake %s, changelog only %s", r.Name, r.Rows, r.PG, r.Lake, r.Changelog)
		}
	}
	if q.Queries[0].Rows != 3 { // placed, paid, shipped
		t.Errorf("orders by status: %d rows, want 3", q.Queries[0].Rows)
	}

	f := rep.Freshness
	if f == nil {
		t.Fatal("no freshness report")
	}
	if f.Commits < 10 || f.Rows < f.Commits || f.Visible != f.Rows {
		t.Errorf("freshness: %d transactions, %d rows written, %d visible", f.Commits, f.Rows, f.Visible)
	}
	if f.P50 <= 0 || f.P50 > f.P99 || f.P99 > f.Max {
		t.Errorf("freshness: p50 %s, p99 %s, max %s", f.P50, f.P99, f.Max)
	}

	// compact: the first compaction and three batches of changes, each
	// next to DuckDB's merge of the same files into as many rows
	if len(rep.Compact) != 7 {
		t.Fatalf("%d compaction results, want 7: %+v", len(rep.Compact), rep.Compact)
	}
	rows := map[string]int64{}
	for _, r := range rep.Compact {
		switch r.Who {
		case "cdclake":
			rows[r.Scenario] = r.Rows
		case "duckdb":
			if r.Rows != rows[r.Scenario] || r.Rows < 3000 {
				t.Errorf("%s: DuckDB wrote %d rows, cdclake %d", r.Scenario, r.Rows, rows[r.Scenario])
			}
		}
	}
	if rep.Compact[1].Changes != 1000 {
		t.Errorf("first batch applied %d changes, want 1000", rep.Compact[1].Changes)
	}

	m := rep.Metadata
	if len(m) == 0 || m[len(m)-1].Flushes != 120 || m[len(m)-1].Snapshots == 0 {
		t.Errorf("metadata points %+v, want the last after 120 flushes", m)
	}
	for _, s := range []string{"commit-to-visible p50", "lake ms, snapshot + tail", "duckdb", "metadata KiB"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the report lacks %q", s)
		}
	}
}
