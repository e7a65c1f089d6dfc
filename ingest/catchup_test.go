package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestCatchUpAsyncCommits runs --catch-up right after transactions that
// committed with synchronous_commit = off, whose commit records are still
// in PostgreSQL's WAL buffers (wal_writer_delay is at its 10 s maximum, so
// they stay there): every one of them must be in the lake when catch-up
// returns, without waiting for the WAL writer. With a transaction left open
// at the end of the WAL (its records not flushed by anyone), catch-up must
// still finish.
func TestCatchUpAsyncCommits(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{Settings: map[string]string{
		"synchronous_commit": "off", "wal_writer_delay": "10000"}})
	url := pg.CreateDB(t, "async")
	pg.Exec(t, "async", "CREATE TABLE a (id int PRIMARY KEY, val text)", "CREATE TABLE b (id int PRIMARY KEY, val text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil { // creates the slot
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// run catches up within a deadline and fails the test if it took it
	run := func(t *testing.T) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		o := o
		o.CatchUp = true
		started := time.Now()
		if err := Run(rctx, cat, o); err != nil {
			t.Fatal(err)
		}
		if rctx.Err() != nil {
			t.Fatalf("catch-up did not finish within %s", time.Since(started).Round(time.Second))
		}
		// it flushes the WAL it waits for rather than wait for the WAL writer
		if took := time.Since(started); took >= 10*time.Second {
			t.Errorf("catch-up took %s, as long as wal_writer_delay", took.Round(time.Millisecond))
		}
	}
	inserted := func(t *testing.T, table string) int {
		t.Helper()
		n := 0
		for _, r := range scanRows(t, cat, "async", "public", table) {
			if r[lakeformat.ColOp] == lakeformat.OpInsert {
				n++
			}
		}
		return n
	}
	commit := func(t *testing.T, from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if _, err := conn.Exec(ctx, "INSERT INTO a VALUES ($1, $2)", i, fmt.Sprintf("row %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("last commits in WAL buffers", func(t *testing.T) {
		commit(t, 1, 300)
		run(t)
		if n := inserted(t, "a"); n != 300 {
			t.Fatalf("lake has %d of the 300 rows committed before catch-up started", n)
		}
	})

	t.Run("open transaction at the end of the WAL", func(t *testing.T) {
		commit(t, 301, 400)
		open, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close(ctx)
		tx, err := open.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO b SELECT g, 'open' FROM generate_series(1, 20) g"); err != nil {
			t.Fatal(err)
		}
		run(t)
		if n := inserted(t, "a"); n != 400 {
			t.Fatalf("lake has %d of the 400 rows committed before catch-up started", n)
		}
	})
}
