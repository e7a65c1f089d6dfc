package lake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// exists implements Exists on top of Attributes.
func exists(ctx context.Context, b BucketReader, key string) (bool, error) {
	_, err := b.Attributes(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// memLimit is the largest non-seekable body seekable keeps in memory.
const memLimit = 8 << 20

// seekable returns r as an io.ReadSeeker with its length. Readers that are
// not seekable are copied into memory (up to memLimit) or a temporary file,
// which cleanup removes. size is checked when it is not -1.
func seekable(ctx context.Context, r io.Reader, size int64) (io.ReadSeeker, int64, func(), error) {
	nothing := func() {}
	if rs, ok := r.(io.ReadSeeker); ok {
		cur, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, 0, nothing, fmt.Errorf("seek body: %w", err)
		}
		end, err := rs.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, nothing, fmt.Errorf("seek body: %w", err)
		}
		if _, err := rs.Seek(cur, io.SeekStart); err != nil {
			return nil, 0, nothing, fmt.Errorf("seek body: %w", err)
		}
		if n := end - cur; size >= 0 && n != size {
			return nil, 0, nothing, fmt.Errorf("reader holds %d bytes, expected %d", n, size)
		}
		return rs, end - cur, nothing, nil
	}
	r = ctxReader{ctx, r}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, memLimit+1))
	if err != nil {
		return nil, 0, nothing, fmt.Errorf("read body: %w", err)
	}
	if n <= memLimit {
		if size >= 0 && n != size {
			return nil, 0, nothing, fmt.Errorf("reader gave %d bytes, expected %d", n, size)
		}
		return bytes.NewReader(buf.Bytes()), n, nothing, nil
	}
	f, err := os.CreateTemp("", "cdclake-put-*")
	if err != nil {
		return nil, 0, nothing, fmt.Errorf("create spool file: %w", err)
	}
	cleanup := func() {
		f.Close()
		os.Remove(f.Name())
	}
	n, err = io.Copy(f, io.MultiReader(&buf, r))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nothing, fmt.Errorf("spool body to %s: %w", f.Name(), err)
	}
	if size >= 0 && n != size {
		cleanup()
		return nil, 0, nothing, fmt.Errorf("reader gave %d bytes, expected %d", n, size)
	}
	return f, n, cleanup, nil
}
