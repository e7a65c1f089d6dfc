package query

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// TestS3LakeThroughCache reads an S3 lake through the object cache, with a
// cache large enough to keep everything and with one that keeps nothing.
func TestS3LakeThroughCache(t *testing.T) {
	pg := pgtest.Start(t)
	for i, srv := range s3test.All(t) {
		t.Run(srv.Name, func(t *testing.T) {
			srv.Env(t)
			srv.CreateBucket(t, "lake")
			loc, err := lake.Parse("s3://lake/warehouse")
			if err != nil {
				t.Fatal(err)
			}
			db := fmt.Sprintf("shop%d", i)
			s := shoptest.New(t, pg, db, loc.URL(), map[string]string{"s3.endpoint": srv.Endpoint, "s3.region": srv.Region})
			pg.Exec(t, db, shoptest.Workload...)
			s.CatchUp(t)
			bucket, err := lake.Open(context.Background(), loc)
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range []int64{1 << 30, 1} {
				t.Run(fmt.Sprintf("cache %d bytes", size), func(t *testing.T) {
					e := openEngine(t, s.Cat, Options{Lake: loc, Bucket: bucket, CacheDir: t.TempDir(), CacheBytes: size})
					compare(t, e, s.URL, comparisons...)
					compare(t, e, s.URL, comparisons[:2]...) // again, from the cache or fetched again
					bytes, n := e.cache.stats()
					for i := 0; i < 100 && size == 1 && bytes > 1; i++ {
						time.Sleep(20 * time.Millisecond) // pins of ended queries drop asynchronously
						bytes, n = e.cache.stats()
					}
					if size > 1 && n == 0 {
						t.Errorf("nothing cached")
					}
					if size == 1 && bytes > 1 {
						t.Errorf("cache holds %d bytes in %d objects after the queries ended, limit 1", bytes, n)
					}
				})
			}
		})
	}
}
