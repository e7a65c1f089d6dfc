package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestIngestCommandS3 runs the ingest command against S3 lakes and reads
// the committed rows back through the catalog.
func TestIngestCommandS3(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE orders (id int PRIMARY KEY, note text)")
	for i, srv := range s3test.All(t) {
		t.Run(srv.Name, func(t *testing.T) {
			srv.Env(t)
			srv.CreateBucket(t, "lake")
			catPath := filepath.Join(t.TempDir(), "catalog.db")
			args := []string{"ingest", "--source", url, "--name", "shop_" + srv.Name, "--lake", "s3://lake/prod", "--catalog", catPath, "--catch-up"}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := run(ctx, args); err != nil {
				t.Fatal(err)
			}
			pg.Exec(t, "shop", fmt.Sprintf("INSERT INTO orders SELECT g, 'n' || g FROM generate_series(%d, %d) g", i*1000+1, i*1000+500))
			if err := run(ctx, args); err != nil {
				t.Fatal(err)
			}
			lf := lakeFlags{lake: "s3://lake/prod", catalog: catPath}
			cat, _, err := lf.open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer cat.Close()
			tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent("shop_"+srv.Name, "public", "orders"))
			if err != nil {
				t.Fatal(err)
			}
			if loc := tbl.Location(); len(loc) < 13 || loc[:13] != "s3://lake/pro" {
				t.Errorf("table location %s is not in the S3 lake", loc)
			}
			at, err := tbl.Scan().ToArrowTable(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Release()
			var want int64
			if err := pg.QueryRow("shop", "SELECT count(*) FROM orders", &want); err != nil {
				t.Fatal(err)
			}
			if at.NumRows() != want { // the first run's snapshot copied the rows already there
				t.Fatalf("lake holds %d rows, want the source's %d", at.NumRows(), want)
			}
		})
	}
}
