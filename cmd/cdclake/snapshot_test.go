package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdclake/cdclake/internal/pgtest"
)

// TestSnapshotTableBesideKeylessTable: `cdclake snapshot --table` of a
// source streamed through a publication of its own reloads the table it
// names, whatever the database's other tables are: a table the service
// made without a key (not published) must not refuse the reload.
func TestSnapshotTableBesideKeylessTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lakeDir := filepath.Join(t.TempDir(), "lake")
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE items (id int PRIMARY KEY, name text)",
		"INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 50) g",
		"CREATE PUBLICATION shop_pub FOR TABLE items")
	if err := run(ctx, []string{"ingest", "--source", url, "--publication", "shop_pub", "--lake", lakeDir, "--catch-up"}); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "shop", "CREATE TABLE scratch (a int, b text)") // the service's own, no key
	if err := run(ctx, []string{"snapshot", "--source", url, "--table", "public.items", "--lake", lakeDir}); err != nil {
		t.Fatalf("snapshot --table public.items: %v", err)
	}
	if err := run(ctx, []string{"snapshot", "--source", url, "--table", "public.scratch", "--lake", lakeDir}); err == nil {
		t.Error("snapshot --table of the keyless table without REPLICA IDENTITY FULL: no error")
	}
}
