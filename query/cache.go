package query

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cdclake/cdclake/lake"
)

// cache keeps local copies of immutable lake objects (Parquet data files)
// for DuckDB, which cannot read S3 here. It is bounded by bytes: when it
// grows past max, the least recently used objects no running query holds
// are deleted. Objects in use (pinned) are never deleted, so the cache can
// exceed max by the files of the queries running at that moment.
type cache struct {
	dir    string
	max    int64
	bucket lake.BucketReader
	log    *slog.Logger

	mu       sync.Mutex
	entries  map[string]*entry // by key
	size     int64             // bytes of all entries
	fetching map[string]*fetch
}

type entry struct {
	size int64
	refs int
	used time.Time
}

type fetch struct {
	done chan struct{}
	err  error
}

// object is a lake object a query needs: its key and expected size.
type object struct {
	Key  string
	Size int64
}

const tmpPrefix = ".fetch-"

// newCache opens the cache folder dir, taking in the objects a previous
// process left there.
func newCache(dir string, max int64, bucket lake.BucketReader, log *slog.Logger) (*cache, error) {
	c := &cache{dir: dir, max: max, bucket: bucket, log: log, entries: map[string]*entry{}, fetching: map[string]*fetch{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cache folder: %w", err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) {
			return os.Remove(p) // a fetch that did not finish
		}
		if d.Name() == lockName {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		c.entries[filepath.ToSlash(rel)] = &entry{size: info.Size(), used: info.ModTime()}
		c.size += info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan cache folder: %w", err)
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

// path is the local file of key.
func (c *cache) path(key string) string { return filepath.Join(c.dir, filepath.FromSlash(key)) }

// acquire makes sure every object is in the cache, fetching the missing
// ones (up to 8 at a time), and pins them until release is called.
func (c *cache) acquire(ctx context.Context, objs []object) (release func(), err error) {
	var mu sync.Mutex
	var pinned []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, o := range objs {
		g.Go(func() error {
			if err := c.get(gctx, o); err != nil {
				return err
			}
			mu.Lock()
			pinned = append(pinned, o.Key)
			mu.Unlock()
			return nil
		})
	}
	err = g.Wait()
	release = func() { c.unpin(pinned) }
	if err != nil {
		release()
		return nil, err
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return release, nil
}

// get pins key, fetching it first when it is missing.
func (c *cache) get(ctx context.Context, o object) error {
	for {
		c.mu.Lock()
		if e, ok := c.entries[o.Key]; ok {
			e.refs++
			e.used = time.Now()
			c.mu.Unlock()
			return nil
		}
		if f, ok := c.fetching[o.Key]; ok {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if f.err != nil {
				return f.err
			}
			continue // now an entry; pin it
		}
		f := &fetch{done: make(chan struct{})}
		c.fetching[o.Key] = f
		c.mu.Unlock()

		f.err = c.download(ctx, o)
		c.mu.Lock()
		delete(c.fetching, o.Key)
		if f.err == nil {
			c.entries[o.Key] = &entry{size: o.Size, refs: 1, used: time.Now()}
			c.size += o.Size
		}
		c.mu.Unlock()
		close(f.done)
		return f.err
	}
}

// download copies an object into the cache under a temporary name and
// publishes it with one rename.
func (c *cache) download(ctx context.Context, o object) error {
	start := time.Now()
	dst := c.path(o.Key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("create cache folder: %w", err)
	}
	r, err := c.bucket.Get(ctx, o.Key)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", o.Key, err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("create cache file: %w", err)
	}
	n, err := io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && o.Size >= 0 && n != o.Size {
		err = fmt.Errorf("got %d bytes, the table metadata says %d", n, o.Size)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("fetch %s: %w", o.Key, err)
	}
	c.log.Debug("fetched lake object", "key", o.Key, "bytes", n, "elapsed", time.Since(start))
	return nil
}

// pin adds a reference to keys already in the cache.
func (c *cache) pin(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.entries[k]; ok {
			e.refs++
		}
	}
}

func (c *cache) unpin(keys []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.entries[k]; ok && e.refs > 0 {
			e.refs--
		}
	}
	c.evictLocked()
}

// evictLocked deletes unpinned objects, least recently used first, until
// the cache fits max.
func (c *cache) evictLocked() {
	if c.size <= c.max {
		return
	}
	var free []string
	for k, e := range c.entries {
		if e.refs == 0 {
			free = append(free, k)
		}
	}
	sort.Slice(free, func(i, j int) bool { return c.entries[free[i]].used.Before(c.entries[free[j]].used) })
	for _, k := range free {
		if c.size <= c.max {
			break
		}
		if err := os.Remove(c.path(k)); err != nil && !os.IsNotExist(err) {
			c.log.Warn("evict cached object", "key", k, "err", err)
			continue
		}
		c.size -= c.entries[k].size
		delete(c.entries, k)
	}
	if c.size > c.max {
		c.log.Warn("lake cache holds more than its limit: running queries need these files",
			"bytes", c.size, "limit", c.max)
	}
}

// stats returns the cached bytes and object count.
func (c *cache) stats() (bytes int64, objects int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size, len(c.entries)
}
