package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// FileBucket is a Bucket stored in a local folder: the object at key
// "a/b.parquet" is the file <root>/a/b.parquet. Puts write a temporary file
// in the destination folder, fsync it and rename it into place, so readers
// never see partial files. Folders are created on demand and removed when
// their last object is deleted.
//
// A key cannot be both an object and the folder of other keys (a file
// "a" and a file "a/b"); puts that would need that fail.
type FileBucket struct {
	root string
}

var _ Bucket = (*FileBucket)(nil)

// NewFileBucket returns a bucket rooted at the folder root, creating it (and
// its parents) if missing. root is made absolute. It fails with a one-line
// error when the folder cannot be created or root is not a folder; whether
// an existing folder is writable is checked by Check.
func NewFileBucket(root string) (*FileBucket, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("make lake path %q absolute: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("lake %s is not a folder (choose another --lake)", abs)
	}
	if err != nil {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fileProblem(abs, err)
		}
	}
	return &FileBucket{root: abs}, nil
}

// Root returns the absolute folder holding the objects.
func (b *FileBucket) Root() string { return b.root }

// String returns the root folder, for messages.
func (b *FileBucket) String() string { return b.root }

func (b *FileBucket) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// Put implements Bucket.
func (b *FileBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put object %q: %w", key, err)
	}
	if err := b.put(ctx, p, r, size); err != nil {
		return fmt.Errorf("put object %q: %w", key, err)
	}
	return nil
}

func (b *FileBucket) put(ctx context.Context, p string, r io.Reader, size int64) error {
	dir := filepath.Dir(p)
	f, err := b.createTemp(dir)
	if err != nil {
		return err
	}
	tmp := f.Name()
	published := false
	defer func() {
		if !published {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("reader gave %d bytes, expected %d", n, size)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	published = true
	return syncDir(dir)
}

// createTemp creates the folder and a temporary file in it. It retries when
// a concurrent Delete removes the folder (now empty) in between.
func (b *FileBucket) createTemp(dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			var f *os.File
			if f, err = os.CreateTemp(dir, tmpPrefix+"*"); err == nil {
				return f, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			return nil, fmt.Errorf("create temporary file: %w", err)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// Get implements Bucket.
func (b *FileBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get object %q: %w", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("get object %q: %w", key, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get object %q: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("get object %q: %w", key, ErrNotFound)
	}
	return f, nil
}

// Attributes implements Bucket.
func (b *FileBucket) Attributes(ctx context.Context, key string) (Attrs, error) {
	p, err := b.path(key)
	if err != nil {
		return Attrs{}, err
	}
	if err := ctx.Err(); err != nil {
		return Attrs{}, fmt.Errorf("stat object %q: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Attrs{}, fmt.Errorf("stat object %q: %w", key, notFound(err))
	}
	if fi.IsDir() {
		return Attrs{}, fmt.Errorf("stat object %q: %w", key, ErrNotFound)
	}
	return Attrs{Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Exists implements Bucket.
func (b *FileBucket) Exists(ctx context.Context, key string) (bool, error) {
	return exists(ctx, b, key)
}

// Delete implements Bucket. Folders left empty are removed, up to the root.
func (b *FileBucket) Delete(ctx context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete object %q: %w", key, err)
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // a folder is not an object
	}
	if err := os.Remove(p); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete object %q: %w", key, err)
	}
	for dir := filepath.Dir(p); dir != b.root && strings.HasPrefix(dir, b.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty (or already gone): stop
		}
	}
	return nil
}

// Iter implements Bucket. It walks only the folder named by the prefix up to
// its last slash, then sorts, so memory grows with the keys under it.
func (b *FileBucket) Iter(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list objects %q: %w", prefix, err)
	}
	keys, err := b.list(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list objects %q: %w", prefix, err)
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list objects %q: %w", prefix, err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

func (b *FileBucket) list(ctx context.Context, prefix string) ([]string, error) {
	start := b.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	// The trailing separator makes WalkDir follow a symlinked start folder.
	start += string(filepath.Separator)
	var keys []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotFound(err) {
				return nil // deleted during the walk, or no such folder
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	return keys, nil
}

// notFound maps "no such file" (and "a parent is a file") to ErrNotFound.
func notFound(err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
