package rest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/cdclake/cdclake/lake"
)

// checksums computes the SHA-256 of lake objects and remembers them. Data
// files are immutable (a key is never rewritten with other bytes), so a
// checksum, keyed by object key and size, stays valid; the cache is kept
// in memory and computed again after a restart.
type checksums struct {
	bucket lake.BucketReader
	group  singleflight.Group
	mu     sync.Mutex
	sums   map[string]string // key + "\x00" + size -> hex digest
}

const checksumCacheSize = 200_000

func (c *checksums) get(ctx context.Context, key string, size int64) (string, error) {
	id := key + "\x00" + strconv.FormatInt(size, 10)
	c.mu.Lock()
	sum, ok := c.sums[id]
	c.mu.Unlock()
	if ok {
		return sum, nil
	}
	v, err, _ := c.group.Do(id, func() (any, error) {
		rc, err := c.bucket.Get(ctx, key)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", key, err)
		}
		if n != size {
			return "", fmt.Errorf("object %s has %d bytes, the catalog says %d", key, n, size)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		c.mu.Lock()
		if c.sums == nil || len(c.sums) >= checksumCacheSize {
			c.sums = map[string]string{}
		}
		c.sums[id] = sum
		c.mu.Unlock()
		return sum, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}
