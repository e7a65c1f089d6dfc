package laketest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdclake/cdclake/lake"
)

func testRoundTrip(t *testing.T, b lake.Bucket) {
	before := time.Now().Add(-time.Minute)
	data := []byte("hello, lake\n")
	put(t, b, "dir/sub/hello.txt", data)
	if got := get(t, b, "dir/sub/hello.txt"); !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	a, err := b.Attributes(t.Context(), "dir/sub/hello.txt")
	if err != nil {
		t.Fatalf("Attributes: %v", err)
	}
	if a.Size != int64(len(data)) {
		t.Errorf("Attributes.Size = %d, want %d", a.Size, len(data))
	}
	if a.ModTime.Before(before) || a.ModTime.After(time.Now().Add(time.Minute)) {
		t.Errorf("Attributes.ModTime = %v, want about now", a.ModTime)
	}
	ok, err := b.Exists(t.Context(), "dir/sub/hello.txt")
	if err != nil || !ok {
		t.Errorf("Exists = %v, %v; want true, nil", ok, err)
	}
	// A reader that is neither seekable nor sized.
	put2 := []byte("streamed")
	if err := b.Put(t.Context(), "stream", onlyReader{bytes.NewReader(put2)}, -1); err != nil {
		t.Fatalf("Put(unknown size): %v", err)
	}
	if got := get(t, b, "stream"); !bytes.Equal(got, put2) {
		t.Errorf("Get(stream) = %q, want %q", got, put2)
	}
}

func testEmptyObject(t *testing.T, b lake.Bucket) {
	put(t, b, "empty", nil)
	if got := get(t, b, "empty"); len(got) != 0 {
		t.Errorf("Get(empty) = %q, want nothing", got)
	}
	if a, err := b.Attributes(t.Context(), "empty"); err != nil || a.Size != 0 {
		t.Errorf("Attributes(empty) = %+v, %v; want size 0", a, err)
	}
}

func testOverwrite(t *testing.T, b lake.Bucket) {
	put(t, b, "k", []byte("first version, longer"))
	put(t, b, "k", []byte("second"))
	if got := get(t, b, "k"); string(got) != "second" {
		t.Errorf("Get after overwrite = %q, want %q", got, "second")
	}
	if a, err := b.Attributes(t.Context(), "k"); err != nil || a.Size != 6 {
		t.Errorf("Attributes after overwrite = %+v, %v; want size 6", a, err)
	}
	if keys := list(t, b, ""); !slices.Equal(keys, []string{"k"}) {
		t.Errorf("Iter after overwrite = %q, want [k]", keys)
	}
}

func testNotFound(t *testing.T, b lake.Bucket) {
	put(t, b, "folder/object", []byte("x"))
	for _, key := range []string{"missing", "missing/deeper/key", "folder", "folder/objec"} {
		if _, err := b.Get(t.Context(), key); !errors.Is(err, lake.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := b.Attributes(t.Context(), key); !errors.Is(err, lake.ErrNotFound) {
			t.Errorf("Attributes(%q) error = %v, want ErrNotFound", key, err)
		}
		if ok, err := b.Exists(t.Context(), key); ok || err != nil {
			t.Errorf("Exists(%q) = %v, %v; want false, nil", key, ok, err)
		}
	}
}

func testDelete(t *testing.T, b lake.Bucket) {
	put(t, b, "a/b/c", []byte("x"))
	put(t, b, "a/keep", []byte("y"))
	for range 2 { // the second delete finds nothing, which is fine
		if err := b.Delete(t.Context(), "a/b/c"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if err := b.Delete(t.Context(), "never/existed"); err != nil {
		t.Errorf("Delete(never existed): %v", err)
	}
	if ok, err := b.Exists(t.Context(), "a/b/c"); ok || err != nil {
		t.Errorf("Exists after Delete = %v, %v; want false, nil", ok, err)
	}
	if keys := list(t, b, ""); !slices.Equal(keys, []string{"a/keep"}) {
		t.Errorf("Iter after Delete = %q, want [a/keep]", keys)
	}
	// The folder of a deleted key can hold new keys again.
	put(t, b, "a/b/d", []byte("z"))
	if got := get(t, b, "a/b/d"); string(got) != "z" {
		t.Errorf("Get(a/b/d) = %q", got)
	}
}

func testLarge(t *testing.T, b lake.Bucket) {
	data := randomBytes(t, 9<<20+123)
	put(t, b, "large/seekable.bin", data)
	if got := get(t, b, "large/seekable.bin"); !bytes.Equal(got, data) {
		t.Errorf("Get(seekable) returned %d bytes that differ from the %d put", len(got), len(data))
	}
	err := b.Put(t.Context(), "large/stream.bin", onlyReader{bytes.NewReader(data)}, int64(len(data)))
	if err != nil {
		t.Fatalf("Put(stream): %v", err)
	}
	if got := get(t, b, "large/stream.bin"); !bytes.Equal(got, data) {
		t.Errorf("Get(stream) returned %d bytes that differ from the %d put", len(got), len(data))
	}
	if a, err := b.Attributes(t.Context(), "large/stream.bin"); err != nil || a.Size != int64(len(data)) {
		t.Errorf("Attributes = %+v, %v; want size %d", a, err, len(data))
	}
}

func testSizeMismatch(t *testing.T, b lake.Bucket) {
	for _, r := range []io.Reader{strings.NewReader("short"), onlyReader{strings.NewReader("short")}} {
		if err := b.Put(t.Context(), "mismatch", r, 10); err == nil {
			t.Errorf("Put(%T) with a wrong size succeeded", r)
		}
	}
	if ok, err := b.Exists(t.Context(), "mismatch"); ok || err != nil {
		t.Errorf("Exists after failed puts = %v, %v; want false, nil", ok, err)
	}
}

func testCancelled(t *testing.T, b lake.Bucket) {
	put(t, b, "exists", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", op, err)
		}
	}
	check("Put", b.Put(ctx, "new", strings.NewReader("x"), 1))
	_, err := b.Get(ctx, "exists")
	check("Get", err)
	_, err = b.Attributes(ctx, "exists")
	check("Attributes", err)
	_, err = b.Exists(ctx, "exists")
	check("Exists", err)
	check("Iter", b.Iter(ctx, "", func(string) error { return nil }))
	check("Delete", b.Delete(ctx, "exists"))
	if ok, err := b.Exists(t.Context(), "new"); ok || err != nil {
		t.Errorf("Exists(new) after cancelled Put = %v, %v; want false, nil", ok, err)
	}
	if ok, err := b.Exists(t.Context(), "exists"); !ok || err != nil {
		t.Errorf("Exists(exists) after cancelled Delete = %v, %v; want true, nil", ok, err)
	}
}
