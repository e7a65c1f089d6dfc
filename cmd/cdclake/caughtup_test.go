package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdclake/cdclake/internal/pgtest"
)

// TestRunClosesIdleHours runs cdclake run over a source that commits once
// and then nothing: the catalog API must report it complete through a
// sample of its WAL taken after that commit, not through the commit's own
// time only, so that the hour of the commit closes. The samples' clock is
// two hours ahead, standing in for the time that passes.
func TestRunClosesIdleHours(t *testing.T) {
	clock, every := walSampleClock, walSampleEvery
	walSampleClock = func() time.Time { return time.Now().Add(2 * time.Hour) }
	walSampleEvery = 200 * time.Millisecond
	t.Cleanup(func() { walSampleClock, walSampleEvery = clock, every })

	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "quiet")
	pg.Exec(t, "quiet", "CREATE TABLE orders (id int PRIMARY KEY, note text)", "INSERT INTO orders VALUES (1, 'only')")
	dir := t.TempDir()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cdclake.yaml")
	err = os.WriteFile(cfg, []byte(fmt.Sprintf(`sources:
  - name: quiet
    url: %s
    flush-interval: 100ms
compaction:
  interval: 0
serve:
  addr: 127.0.0.1:%d
  pg-addr: ""
`, url, port)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", cfg}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	get := func(path string, v any) bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return false // still starting
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return true
	}
	var src struct {
		Watermark struct {
			CommitTime *time.Time `json:"commit_time"`
		} `json:"watermark"`
		CompleteThrough *time.Time `json:"complete_through"`
	}
	var hours struct {
		Partitions []struct {
			Hour   time.Time `json:"hour"`
			Closed bool      `json:"closed"`
			Rows   int64     `json:"rows"`
		} `json:"partitions"`
	}
	// wait reads the source and its partitions until ok says so
	wait := func(what string, ok func(rows int64, closed bool) bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			if get("/v1/sources/quiet", &src) && get("/v1/tables/quiet/public/orders/partitions", &hours) {
				var rows int64
				closed := len(hours.Partitions) > 0
				for _, p := range hours.Partitions {
					rows += p.Rows
					closed = closed && p.Closed
				}
				if ok(rows, closed) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: source %+v (complete through %v), partitions %+v", what,
					src.Watermark, src.CompleteThrough, hours.Partitions)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	wait("no initial copy", func(rows int64, _ bool) bool { return rows == 1 })
	// one streamed transaction, then nothing
	pg.Exec(t, "quiet", "INSERT INTO orders VALUES (2, 'last')")
	wait("the hours of the idle source did not close", func(rows int64, closed bool) bool {
		return rows == 2 && src.Watermark.CommitTime != nil && closed
	})
	if src.Watermark.CommitTime == nil || src.CompleteThrough == nil || !src.CompleteThrough.After(src.Watermark.CommitTime.Add(time.Hour)) {
		t.Errorf("complete_through %v, want a sample taken after the last commit at %v", src.CompleteThrough, src.Watermark.CommitTime)
	}
}

// TestServeClosesHoursAfterCatchUp runs the nightly set-up: cdclake serve
// on its own (it knows no source URL) and ingest --catch-up now and then.
// A catch-up that reached the server's WAL end proves every transaction
// committed before its start in the lake; it records that in the catalog,
// and serve's partition list closes the last busy hour with it, without a
// new transaction. The catch-up's clock is two hours ahead, standing in
// for the night that passes.
func TestServeClosesHoursAfterCatchUp(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "quiet")
	pg.Exec(t, "quiet", "CREATE TABLE orders (id int PRIMARY KEY, note text)", "INSERT INTO orders VALUES (1, 'copied')")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	catchUp := func() {
		t.Helper()
		if err := run(ctx, []string{"ingest", "--source", url, "--lake", dir, "--catch-up"}); err != nil {
			t.Fatalf("ingest --catch-up: %v", err)
		}
	}
	catchUp() // the initial copy
	pg.Exec(t, "quiet", "INSERT INTO orders VALUES (2, 'the evening')")
	catchUp() // streams it

	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--lake", dir, "--kpis", "", "--checks", "", "--pg-addr", "",
			"--addr", fmt.Sprintf("127.0.0.1:%d", port)})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var src struct {
		Watermark struct {
			CommitTime *time.Time `json:"commit_time"`
		} `json:"watermark"`
		CompleteThrough *time.Time `json:"complete_through"`
	}
	var hours struct {
		Partitions []struct {
			Hour   time.Time `json:"hour"`
			Closed bool      `json:"closed"`
			Rows   int64     `json:"rows"`
		} `json:"partitions"`
	}
	// read fetches the source and the partitions of its table
	read := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			okSrc := getJSON(t, port, "/v1/sources/quiet", &src)
			if okSrc && getJSON(t, port, "/v1/tables/quiet/public/orders/partitions", &hours) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("serve did not answer")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// last reports the rows and the state of the last busy hour
	last := func() (rows int64, closed bool) {
		var h time.Time
		for _, p := range hours.Partitions {
			if p.Rows > 0 && !p.Hour.Before(h) {
				h, rows, closed = p.Hour, p.Rows, p.Closed
			}
		}
		return rows, closed
	}
	read()
	if src.Watermark.CommitTime == nil {
		t.Fatalf("no streamed transaction: %+v", src)
	}
	if _, closed := last(); closed {
		t.Fatalf("the last busy hour is closed before a catch-up proved it complete: %+v (complete through %v)", hours.Partitions, src.CompleteThrough)
	}

	// the night passes; the nightly catch-up finds nothing new
	clock := ingestClock
	ingestClock = func() time.Time { return time.Now().Add(2 * time.Hour) }
	t.Cleanup(func() { ingestClock = clock })
	catchUp()
	read()
	if rows, closed := last(); !closed {
		t.Errorf("the last busy hour (%d rows) is still open after a catch-up two hours later: source %+v, complete through %v, partitions %+v",
			rows, src.Watermark, src.CompleteThrough, hours.Partitions)
	}
	if src.CompleteThrough == nil || !src.CompleteThrough.After(src.Watermark.CommitTime.Add(time.Hour)) {
		t.Errorf("complete_through %v, want the catch-up's start, two hours after the last commit at %v", src.CompleteThrough, src.Watermark.CommitTime)
	}
}

// getJSON reads a JSON answer of the server on port into v; false when it
// is not answering yet.
func getJSON(t *testing.T, port int, path string, v any) bool {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return true
}
