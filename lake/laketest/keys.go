package laketest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cdclake/cdclake/lake"
)

func testIter(t *testing.T, b lake.Bucket) {
	all := []string{"a-b", "a/1", "a/10", "a/2/x", "a/2/y", "ab/c", "b", "z/z/z/z"}
	for _, k := range []string{"z/z/z/z", "a/2/y", "b", "a/10", "ab/c", "a/1", "a-b", "a/2/x"} {
		put(t, b, k, []byte(k))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"a-b", "a/1", "a/10", "a/2/x", "a/2/y", "ab/c"}},
		{"a/", []string{"a/1", "a/10", "a/2/x", "a/2/y"}},
		{"a/1", []string{"a/1", "a/10"}},
		{"a/2/", []string{"a/2/x", "a/2/y"}},
		{"a/2/x", []string{"a/2/x"}},
		{"z/z/", []string{"z/z/z/z"}},
		{"nope", []string{}},
		{"nope/deeper/", []string{}},
		{"b/", []string{}},
	} {
		if got := list(t, b, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("Iter(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func testIterStops(t *testing.T, b lake.Bucket) {
	for _, k := range []string{"k1", "k2", "k3"} {
		put(t, b, k, nil)
	}
	stop := errors.New("stop here")
	var seen []string
	err := b.Iter(t.Context(), "", func(k string) error {
		seen = append(seen, k)
		if k == "k2" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("Iter error = %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"k1", "k2"}) {
		t.Errorf("Iter visited %q, want [k1 k2]", seen)
	}
}

func testSpecialKeys(t *testing.T, b lake.Bucket) {
	keys := []string{
		"with space/file name.parquet",
		"unicode/äöü ß/データ.parquet",
		"symbols/a+b=c&d;e,f@g$h'i(j)!~*.txt",
		"percent/%41%2F%20.txt",
		"dots/.hidden/..not-parent/...",
		"emoji/🦆.bin",
		"date=2026-03-01/hour=10/part-00000.parquet",
	}
	for _, k := range keys {
		put(t, b, k, []byte(k))
	}
	for _, k := range keys {
		if got := get(t, b, k); string(got) != k {
			t.Errorf("Get(%q) = %q", k, got)
		}
	}
	want := slices.Sorted(slices.Values(keys))
	if got := list(t, b, ""); !slices.Equal(got, want) {
		t.Errorf("Iter = %q, want %q", got, want)
	}
}

func testInvalidKeys(t *testing.T, b lake.Bucket) {
	put(t, b, "inside", []byte("x"))
	ctx := t.Context()
	for _, key := range []string{
		"", "/abs", "/", "../x", "..", ".", "a/../../b", "a/..", "./a", "a/./b",
		"a//b", "a/", `a\b`, `..\x`, "a\x00b",
	} {
		if err := b.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, lake.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Get(ctx, key); !errors.Is(err, lake.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Attributes(ctx, key); !errors.Is(err, lake.ErrInvalidKey) {
			t.Errorf("Attributes(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Exists(ctx, key); !errors.Is(err, lake.ErrInvalidKey) {
			t.Errorf("Exists(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, lake.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "/abs", "../", "a/../", "a//", `a\`, "a\x00"} {
		err := b.Iter(ctx, prefix, func(string) error { return nil })
		if !errors.Is(err, lake.ErrInvalidKey) {
			t.Errorf("Iter(%q) error = %v, want ErrInvalidKey", prefix, err)
		}
	}
	if keys := list(t, b, ""); !slices.Equal(keys, []string{"inside"}) {
		t.Errorf("Iter after invalid puts = %q, want [inside]", keys)
	}
}
