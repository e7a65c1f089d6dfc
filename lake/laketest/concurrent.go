package laketest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cdclake/cdclake/lake"
)

func testConcurrentPuts(t *testing.T, b lake.Bucket) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			data := []byte(fmt.Sprintf("object %d", i))
			key := fmt.Sprintf("concurrent/%02d/obj", i)
			errs[i] = b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	keys := list(t, b, "concurrent/")
	if len(keys) != n {
		t.Fatalf("Iter found %d keys, want %d: %q", len(keys), n, keys)
	}
	for i, k := range keys {
		if got, want := string(get(t, b, k)), fmt.Sprintf("object %d", i); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
}

// testAtomicOverwrite overwrites one key while readers read it: every read
// must see one complete version.
func testAtomicOverwrite(t *testing.T, b lake.Bucket) {
	const size = 1 << 20
	versions := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)}
	put(t, b, "hot", versions[0])
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		for i := range 10 {
			v := versions[i%2]
			if err := b.Put(ctx, "hot", bytes.NewReader(v), size); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				rc, err := b.Get(ctx, "hot")
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("Get during overwrite: %v", err)
					}
					return
				}
				data, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("read during overwrite: %v", err)
					}
					return
				}
				if len(data) != size || (!bytes.Equal(data, versions[0]) && !bytes.Equal(data, versions[1])) {
					t.Errorf("read a partial or mixed object of %d bytes", len(data))
					return
				}
			}
		})
	}
	wg.Wait()
}

// testConcurrentPutDelete puts and deletes keys sharing folders while
// listing them: no operation may fail because of another.
func testConcurrentPutDelete(t *testing.T, b lake.Bucket) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var writers, lister sync.WaitGroup
	lister.Go(func() {
		for ctx.Err() == nil {
			err := b.Iter(ctx, "shared/", func(string) error { return nil })
			if err != nil && ctx.Err() == nil {
				t.Errorf("Iter during puts and deletes: %v", err)
				return
			}
		}
	})
	for w := range 4 {
		writers.Go(func() {
			for i := range 15 {
				key := fmt.Sprintf("shared/deep/folder/%d/%d", i%3, w)
				if err := b.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				if err := b.Delete(ctx, key); err != nil {
					t.Errorf("Delete(%q): %v", key, err)
					return
				}
			}
		})
	}
	writers.Wait()
	cancel()
	lister.Wait()
	if keys := list(t, b, ""); len(keys) != 0 {
		t.Errorf("keys left after all deletes: %q", keys)
	}
}
