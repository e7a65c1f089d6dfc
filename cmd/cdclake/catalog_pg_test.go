package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestSharedPostgresCatalog runs two ingest commands (two sources, each
// command with its own catalog connections, as two processes would have)
// and compactions at the same time against one lake whose catalog is a
// PostgreSQL database. Every commit goes through the catalog's optimistic
// concurrency; at the end each source's snapshot table equals its
// database row for row.
func TestSharedPostgresCatalog(t *testing.T) {
	pg := pgtest.Start(t)
	catURL := pg.CreateDB(t, "lakecatalog")
	lakeDir := filepath.Join(t.TempDir(), "lake")
	sources := []string{"shop_a", "shop_b"}
	urls := map[string]string{}
	for _, db := range sources {
		urls[db] = pg.CreateDB(t, db)
		pg.Exec(t, db, "CREATE TABLE orders (id int PRIMARY KEY, note text)",
			"INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 3000) g")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ingestAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(sources))
		for i, db := range sources {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = run(ctx, []string{"ingest", "--source", urls[db], "--lake", lakeDir, "--catalog", catURL,
					"--catch-up", "--flush-interval", "50ms"})
			}()
		}
		// compactions beside the ingests, until they are done
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			err := (&compactCommand{out: io.Discard}).Run(ctx, []string{"--lake", lakeDir, "--catalog", catURL})
			if err != nil {
				t.Errorf("compact beside ingest: %v", err)
			}
			select {
			case <-done:
				for i, err := range errs {
					if err != nil {
						t.Fatalf("ingest %s: %v", sources[i], err)
					}
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	ingestAll()
	for i, db := range sources {
		pg.Exec(t, db, fmt.Sprintf("UPDATE orders SET note = 'u%d' WHERE id %% 7 = 0", i),
			"DELETE FROM orders WHERE id % 11 = 0",
			"INSERT INTO orders SELECT g, 'late' FROM generate_series(3001, 3500) g")
	}
	ingestAll()
	if err := (&compactCommand{out: io.Discard}).Run(ctx, []string{"--lake", lakeDir, "--catalog", catURL}); err != nil {
		t.Fatal(err)
	}

	lf := lakeFlags{lake: lakeDir, catalog: catURL}
	cat, _, err := lf.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, db := range sources {
		tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(db, "public", "orders"))
		if err != nil {
			t.Fatal(err)
		}
		at, err := tbl.Scan().ToArrowTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var lake []string
		rdr := array.NewTableReader(at, 0)
		for rdr.Next() {
			rec := rdr.RecordBatch()
			id, note := rec.Column(0).(*array.Int32), rec.Column(1).(*array.String)
			for i := range int(rec.NumRows()) {
				lake = append(lake, fmt.Sprintf("%d:%s", id.Value(i), note.Value(i)))
			}
		}
		rdr.Release()
		at.Release()
		conn, err := pgx.Connect(ctx, urls[db])
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := conn.Query(ctx, "SELECT id || ':' || note FROM orders")
		want, err := pgx.CollectRows(rows, pgx.RowTo[string])
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(lake)
		slices.Sort(want)
		if !slices.Equal(lake, want) {
			t.Errorf("%s: the lake holds %d rows, PostgreSQL %d; they differ", db, len(lake), len(want))
		}
	}
}
