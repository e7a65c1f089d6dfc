package lake_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/lake/laketest"
)

func newFileBucket(t *testing.T) *lake.FileBucket {
	t.Helper()
	b, err := lake.NewFileBucket(filepath.Join(t.TempDir(), "lake"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFileBucket(t *testing.T) {
	laketest.AcceptanceTest(t, func(t *testing.T) lake.Bucket { return newFileBucket(t) })
}

func TestFileBucketWithPrefix(t *testing.T) {
	laketest.AcceptanceTest(t, func(t *testing.T) lake.Bucket {
		return lake.WithPrefix(newFileBucket(t), "/tenant/one/")
	})
}

func TestFileBucketLeavesNoTempFiles(t *testing.T) {
	b := newFileBucket(t)
	ctx := t.Context()
	if err := b.Put(ctx, "a/b/c", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "a/b/bad", strings.NewReader("x"), 2); err == nil {
		t.Fatal("Put with a wrong size succeeded")
	}
	var names []string
	filepath.WalkDir(b.Root(), func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, b.Root()))
		}
		return err
	})
	if len(names) != 1 || names[0] != "/a/b/c" {
		t.Errorf("files in the lake = %q, want [/a/b/c]", names)
	}
	fi, err := os.Stat(filepath.Join(b.Root(), "a/b/c"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("object mode = %v, %v; want 0644", fi.Mode(), err)
	}
	// Deleting the last key removes its now empty folders, not the root.
	if err := b.Delete(ctx, "a/b/c"); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(b.Root()); err != nil || len(entries) != 0 {
		t.Errorf("root after delete holds %v, %v; want nothing", entries, err)
	}
}

func TestFileBucketSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	b, err := lake.NewFileBucket(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "x/y", strings.NewReader("1"), 1); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.Iter(t.Context(), "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "x/y" {
		t.Errorf("Iter through a symlinked root = %q, want [x/y]", keys)
	}
}

func TestNewFileBucketErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		root, want string
	}{
		{file, "lake " + file + " is not a folder (choose another --lake)"},
		{filepath.Join(file, "sub"), "lake " + filepath.Join(file, "sub") + " cannot be created: " + file + ": not a directory (a file is in the way of a folder; move it or choose another --lake)"},
	} {
		_, err := lake.NewFileBucket(tc.root)
		if err == nil || err.Error() != tc.want {
			t.Errorf("NewFileBucket(%q) error =\n  %v\nwant\n  %s", tc.root, err, tc.want)
		}
	}
}
