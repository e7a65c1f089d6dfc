package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// changes counts the rows of a source table's changelog (0 if missing).
func changes(t *testing.T, cat *catalog.Catalog, source, table string) int64 {
	t.Helper()
	tbl, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent(source, "public", table))
	if err != nil {
		return 0
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return at.NumRows()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSupervisedSources runs two sources that both have public.orders:
// they stay apart, and one whose PostgreSQL stops does not hold up the
// other and catches up when it is back.
func TestSupervisedSources(t *testing.T) {
	pgA, pgB := pgtest.Start(t), pgtest.Start(t)
	for _, pg := range []*pgtest.Cluster{pgA, pgB} {
		pg.CreateDB(t, "svc")
		pg.Exec(t, "svc", "CREATE TABLE orders (id int PRIMARY KEY, note text)")
	}
	dir := t.TempDir()
	cat, err := catalog.Open(context.Background(), catalog.Options{URL: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sources := []ingest.Options{
		{Source: pgA.URL("svc"), Name: "alpha", FlushAge: 100 * time.Millisecond, Logger: log},
		{Source: pgB.URL("svc"), Name: "beta", FlushAge: 100 * time.Millisecond, Logger: log},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { superviseSources(ctx, cat, sources, log); close(done) }()
	defer func() { cancel(); <-done }()

	insert := func(pg *pgtest.Cluster, from, to int) {
		pg.Exec(t, "svc", fmt.Sprintf("INSERT INTO orders SELECT g, 'n' FROM generate_series(%d, %d) g", from, to))
	}
	waitFor(t, "both slots", func() bool {
		_, errA := cat.Source(context.Background(), "alpha")
		_, errB := cat.Source(context.Background(), "beta")
		return errA == nil && errB == nil
	})
	insert(pgA, 1, 10)
	insert(pgB, 1, 20)
	waitFor(t, "first rows", func() bool {
		return changes(t, cat, "alpha", "orders") == 10 && changes(t, cat, "beta", "orders") == 20
	})

	pgB.Stop()
	insert(pgA, 11, 15)
	waitFor(t, "alpha while beta is down", func() bool { return changes(t, cat, "alpha", "orders") == 15 })
	time.Sleep(2 * time.Second) // beta fails a few times meanwhile
	if err := pgB.Restart(); err != nil {
		t.Fatal(err)
	}
	insert(pgB, 21, 30)
	waitFor(t, "beta after its restart", func() bool { return changes(t, cat, "beta", "orders") == 30 })
	if got := changes(t, cat, "alpha", "orders"); got != 15 {
		t.Errorf("alpha has %d changes, want 15", got)
	}
}
