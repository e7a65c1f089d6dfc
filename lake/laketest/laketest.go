// Package laketest holds AcceptanceTest, the behaviour every lake.Bucket
// backend must show. A backend's test runs it in one line:
//
//	func TestAcceptance(t *testing.T) {
//		laketest.AcceptanceTest(t, func(t *testing.T) lake.Bucket { return newEmptyBucket(t) })
//	}
package laketest

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/cdclake/cdclake/lake"
)

// AcceptanceTest checks the lake.Bucket contract. newBucket must return an
// empty bucket for each call; it is called once per subtest.
func AcceptanceTest(t *testing.T, newBucket func(t *testing.T) lake.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b lake.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"Iter", testIter},
		{"IterStopsOnError", testIterStops},
		{"SpecialKeys", testSpecialKeys},
		{"InvalidKeys", testInvalidKeys},
		{"LargeObject", testLarge},
		{"SizeMismatch", testSizeMismatch},
		{"ConcurrentPuts", testConcurrentPuts},
		{"AtomicOverwrite", testAtomicOverwrite},
		{"ConcurrentPutDeleteIter", testConcurrentPutDelete},
		{"CancelledContext", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newBucket(t))
		})
	}
}

func put(t *testing.T, b lake.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, b lake.Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func list(t *testing.T, b lake.Bucket, prefix string) []string {
	t.Helper()
	keys := []string{}
	if err := b.Iter(t.Context(), prefix, func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		t.Fatalf("Iter(%q): %v", prefix, err)
	}
	return keys
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// onlyReader hides any Seek or WriterTo method of the wrapped reader.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
