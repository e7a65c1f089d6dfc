package ingest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lakeformat"
)

// lockCatalogTable holds an ACCESS EXCLUSIVE lock on one of a PostgreSQL
// catalog's tables from another session, so that every request of the
// catalog touching it waits, as one to a catalog that never answers
// does; the returned function releases it.
func lockCatalogTable(t *testing.T, url, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			_ = tx.Rollback(ctx)
			conn.Close(ctx)
		}
	}
	t.Cleanup(release)
	return release
}

// lakeState resolves the changelog of table (id, val) into its rows, as
// "id|val" sorted: a truncate clears what came before, a delete removes
// its key, every other change sets it.
func lakeState(t *testing.T, cat *catalog.Catalog, source, table string) []string {
	t.Helper()
	state := map[int64]string{}
	for _, c := range readChanges(t, cat, source, "public", table) {
		switch c.Op {
		case lakeformat.OpTruncate:
			clear(state)
		case lakeformat.OpDelete:
			delete(state, c.ID)
		default:
			state[c.ID] = c.Val
		}
	}
	var out []string
	for id, v := range state {
		out = append(out, fmt.Sprintf("%d|%s", id, v))
	}
	sort.Strings(out)
	return out
}

// blackHole forwards TCP connections on 127.0.0.1 to target until hang
// is called; from then on it accepts connections and forwards nothing,
// in either direction: a server that never answers (a dead load balancer,
// a black-holed route). release forwards again.
type blackHole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	hung   bool
	wake   chan struct{} // closed by release
}

func newBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, target: target, wake: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); b.release() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *blackHole) addr() string { return b.ln.Addr().String() }

func (b *blackHole) hang() {
	b.mu.Lock()
	b.hung, b.wake = true, make(chan struct{})
	b.mu.Unlock()
}

func (b *blackHole) release() {
	b.mu.Lock()
	if b.hung {
		b.hung = false
		close(b.wake)
	}
	b.mu.Unlock()
}

// pass waits while the hole is hung.
func (b *blackHole) pass() {
	b.mu.Lock()
	hung, wake := b.hung, b.wake
	b.mu.Unlock()
	if hung {
		<-wake
	}
}

func (b *blackHole) serve(c net.Conn) {
	defer c.Close()
	b.pass()
	up, err := net.Dial("tcp", b.target)
	if err != nil {
		return
	}
	defer up.Close()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				b.pass()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		c.Close()
		up.Close()
	}
	go pipe(up, c)
	pipe(c, up)
}

// TestLakeHangsOnReceivePath makes the lake stop answering while ingest
// handles a Relation message: the catalog (another session holds a lock
// on the catalog table a request reads or writes) or the object store
// (an S3 endpoint that accepts connections and never answers). Ingest
// must end with an error within its deadline (--flush-timeout) instead of
// waiting for good (for the request, or for a reload beside the stream),
// acknowledge nothing past the lake, and lose nothing
// once the lake answers again.
func TestLakeHangsOnReceivePath(t *testing.T) {
	pg := pgtest.Start(t)
	const flushTimeout = 2 * time.Second
	const bound = 20 * time.Second // a hang: the former fixed 30 s, or forever
	cases := []struct {
		name string
		lock string // PostgreSQL catalog table held; "": S3 hangs (SQLite catalog)
		// restart: ingest stops before hang, so that the Relation message
		// hang causes is the session's first (its changelog is looked up);
		// else it streams when hang runs
		restart bool
		hang    []string
	}{
		{"catalog: changelog look-up", "iceberg_tables", true,
			[]string{"INSERT INTO a VALUES (2, 'two')"}},
		{"catalog: record of a rewritten table's reload", "cdclake_snapshots", false,
			[]string{"ALTER TABLE a ADD COLUMN at timestamptz DEFAULT clock_timestamp()", "INSERT INTO a VALUES (2, 'two')"}},
		{"s3: changelog look-up", "", true,
			[]string{"INSERT INTO a VALUES (2, 'two')"}},
		// the flush of the insert gives up after --flush-timeout; the
		// reload the rewrite started beside the stream hangs too, and must
		// not keep ingest from exiting
		{"s3: flush beside a rewritten table's reload", "", false,
			[]string{"ALTER TABLE a ADD COLUMN at timestamptz DEFAULT clock_timestamp()", "INSERT INTO a VALUES (2, 'two')"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := fmt.Sprintf("hang%d", i)
			url := pg.CreateDB(t, db)
			pg.Exec(t, db, "CREATE TABLE a (id int PRIMARY KEY, val text)", "INSERT INTO a VALUES (1, 'one')")
			co := catalog.Options{URL: filepath.Join(t.TempDir(), "catalog.db"), Warehouse: "file://" + t.TempDir()}
			var hole *blackHole
			if tc.lock != "" {
				co.URL = pg.CreateDB(t, fmt.Sprintf("lake%d", i))
			} else {
				srv := s3test.Fake(t)
				srv.CreateBucket(t, "lake")
				hole = newBlackHole(t, strings.TrimPrefix(srv.Endpoint, "http://"))
				px := *srv
				px.Endpoint = "http://" + hole.addr()
				px.Env(t)
				co.Warehouse, co.Props = "s3://lake/wh", map[string]string{"s3.endpoint": px.Endpoint, "s3.region": px.Region}
			}
			cat, err := catalog.Open(context.Background(), co)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cat.Close() })
			o := Options{Source: url, FlushAge: 100 * time.Millisecond, FlushTimeout: flushTimeout,
				PartitionCheckInterval: 200 * time.Millisecond}
			if err := catchUp(t, cat, o); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			done := make(chan error, 1)
			if !tc.restart {
				go func() { done <- Run(ctx, cat, o) }()
				pg.Exec(t, db, "UPDATE a SET val = 'uno' WHERE id = 1")
				deadline := time.Now().Add(60 * time.Second)
				for len(readChanges(t, cat, db, "public", "a")) < 2 {
					if time.Now().After(deadline) {
						t.Fatal("ingest does not stream")
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			var release func()
			if hole != nil {
				hole.hang()
				release = hole.release
			} else {
				release = lockCatalogTable(t, co.URL, tc.lock)
			}
			pg.Exec(t, db, tc.hang...)
			if tc.restart {
				go func() { done <- Run(ctx, cat, o) }()
			}
			start := time.Now()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("ingest returned no error although the lake did not answer")
				}
				t.Logf("ingest ended after %s: %v", time.Since(start).Round(time.Millisecond), err)
			case <-time.After(bound):
				release()
				cancel()
				<-done
				t.Fatalf("BUG: ingest still waits for the lake %s after the Relation message (--flush-timeout %s)", bound, flushTimeout)
			}
			// nothing acknowledged past the lake
			release()
			src, err := cat.Source(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			if c := confirmedLSN(t, pg, db, "cdclake_"+db); c > src.LSN {
				t.Fatalf("slot confirmed up to %d, past the lake's watermark %d", c, src.LSN)
			}
			// and nothing lost once the lake answers
			if err := catchUp(t, cat, o); err != nil {
				t.Fatal(err)
			}
			want := sourceRows(t, url, "SELECT id || '|' || val FROM a")
			got := lakeState(t, cat, db, "a")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("lake holds %v, source %v", got, want)
			}
		})
	}
}

// TestSourceSilent black-holes the connections to the source while ingest
// streams (a dead route, a server frozen without closing its sockets):
// the replication connection receives nothing any more, not even the
// keepalive ingest asks for. Ingest must end with an error within its
// deadline (the longer of --flush-timeout and the server's
// wal_sender_timeout) instead of waiting for good, and lose nothing once
// the source answers again.
func TestSourceSilent(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_sender_timeout": "'5s'"}})
	const db = "silent"
	pg.CreateDB(t, db)
	pg.Exec(t, db, "CREATE TABLE a (id int PRIMARY KEY, val text)", "INSERT INTO a VALUES (1, 'one')")
	hole := newBlackHole(t, fmt.Sprintf("127.0.0.1:%d", pg.Port))
	url := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", hole.addr(), db)
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond, FlushTimeout: 2 * time.Second}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cat, o) }()
	pg.Exec(t, db, "UPDATE a SET val = 'uno' WHERE id = 1")
	deadline := time.Now().Add(60 * time.Second)
	for len(readChanges(t, cat, db, "public", "a")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("ingest does not stream")
		}
		time.Sleep(50 * time.Millisecond)
	}
	hole.hang()
	pg.Exec(t, db, "INSERT INTO a VALUES (2, 'two')")
	start := time.Now()
	const bound = 30 * time.Second // 5 s (wal_sender_timeout) and the time to stop
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ingest returned no error although the source went silent")
		}
		t.Logf("ingest ended after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(bound):
		cancel()
		hole.release()
		<-done
		t.Fatalf("BUG: ingest still waits for a silent source %s after it went silent", bound)
	}
	hole.release()
	if c, w := confirmedLSN(t, pg, db, "cdclake_"+db), sourceLSN(t, cat, db); c > w {
		t.Fatalf("slot confirmed up to %d, past the lake's watermark %d", c, w)
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	want := sourceRows(t, pg.URL(db), "SELECT id || '|' || val FROM a")
	if got := lakeState(t, cat, db, "a"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lake holds %v, source %v", got, want)
	}
}

func sourceLSN(t *testing.T, cat *catalog.Catalog, name string) uint64 {
	t.Helper()
	src, err := cat.Source(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return src.LSN
}
