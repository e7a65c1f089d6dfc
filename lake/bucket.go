package lake

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) by Get and Attributes when the key does
// not exist. Test for it with errors.Is.
var ErrNotFound = errors.New("object not found")

// ErrInvalidKey is returned (wrapped) by every Bucket method given a key or
// prefix that fails ValidateKey or ValidatePrefix. Test for it with errors.Is.
var ErrInvalidKey = errors.New("invalid key")

// Attrs describes a stored object.
type Attrs struct {
	// Size is the length of the object in bytes.
	Size int64
	// ModTime is when the object was last written.
	ModTime time.Time
}

// BucketReader is the read-only half of Bucket, for code that only reads the
// lake (query, status, the HTTP API).
type BucketReader interface {
	// Get opens the object at key. The caller must close the reader.
	// A missing key gives an error satisfying errors.Is(err, ErrNotFound).
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// Attributes returns the size and modification time of the object at key.
	// A missing key gives an error satisfying errors.Is(err, ErrNotFound).
	Attributes(ctx context.Context, key string) (Attrs, error)

	// Exists reports whether an object is stored at key. A missing key is
	// (false, nil), not an error.
	Exists(ctx context.Context, key string) (bool, error)

	// Iter calls fn with every key that starts with prefix, recursively (keys
	// in "sub-folders" included), in ascending byte-wise lexical order. The
	// prefix is a plain string prefix: "a/b" matches "a/b", "a/b/c" and
	// "a/bc"; use "a/b/" for one folder. The empty prefix lists everything.
	// Iteration stops at the first error fn returns, and Iter returns it
	// unwrapped. Objects written or deleted during the walk may or may not be
	// seen.
	Iter(ctx context.Context, prefix string, fn func(key string) error) error
}

// Bucket is an object store holding the lake: a local folder or an S3 bucket
// (optionally under a key prefix). Keys are relative, slash-separated paths
// checked by ValidateKey, so no key can escape the bucket's root or prefix.
// Implementations are safe for concurrent use.
type Bucket interface {
	BucketReader

	// Put stores the content of r at key, replacing any existing object.
	// size is the exact number of bytes r yields, or -1 when unknown; a
	// reader that yields a different number of bytes fails the put. Put is
	// atomic: readers see either the old object or the complete new one,
	// never a partial one, and a failed or cancelled put leaves the old
	// object (or nothing) in place.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// Delete removes the object at key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
}
