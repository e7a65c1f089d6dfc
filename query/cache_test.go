package query

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/cdclake/cdclake/lake"
)

func TestCacheEvictsLeastRecentlyUsedUnpinned(t *testing.T) {
	ctx := context.Background()
	src, err := lake.NewFileBucket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t/a.parquet", "t/b.parquet", "t/c.parquet"} {
		if err := src.Put(ctx, k, strings.NewReader("0123456789"), 10); err != nil {
			t.Fatal(err)
		}
	}
	obj := func(k string) object { return object{Key: "t/" + k + ".parquet", Size: 10} }
	c, err := newCache(t.TempDir(), 20, src, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	cached := func(k string) bool { _, err := os.Stat(c.path(obj(k).Key)); return err == nil }

	relA, err := c.acquire(ctx, []object{obj("a")})
	if err != nil {
		t.Fatal(err)
	}
	relB, err := c.acquire(ctx, []object{obj("b")})
	if err != nil {
		t.Fatal(err)
	}
	relB()
	relA()
	relC, err := c.acquire(ctx, []object{obj("c")})
	if err != nil {
		t.Fatal(err)
	}
	if cached("a") || !cached("b") || !cached("c") {
		t.Errorf("cached a, b, c = %v %v %v; want a (least recently acquired) evicted", cached("a"), cached("b"), cached("c"))
	}
	relC()

	// pinned objects stay even over the limit
	relAll, err := c.acquire(ctx, []object{obj("a"), obj("b"), obj("c")})
	if err != nil {
		t.Fatal(err)
	}
	if b, n := c.stats(); n != 3 || b != 30 {
		t.Errorf("cache holds %d objects, %d bytes while all are pinned", n, b)
	}
	relAll()
	if b, _ := c.stats(); b > 20 {
		t.Errorf("cache holds %d bytes after release, limit 20", b)
	}

	// a wrong size is an error and leaves nothing behind
	if err := src.Put(ctx, "t/d.parquet", strings.NewReader("0123456789"), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := c.acquire(ctx, []object{{Key: "t/d.parquet", Size: 11}}); err == nil || cached("d") {
		t.Errorf("size mismatch: err %v, cached %v", err, cached("d"))
	}
	if _, err := c.acquire(ctx, []object{{Key: "t/missing.parquet", Size: 1}}); err == nil {
		t.Error("missing object accepted")
	}

	// a new cache over the same folder takes the files in
	c2, err := newCache(c.dir, 20, src, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if _, n := c2.stats(); n == 0 {
		t.Error("reopened cache is empty")
	}
}
