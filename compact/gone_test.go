package compact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob/memblob"
)

// TestGoneByType: gone tells a missing file by the error's type (the
// fs.ErrNotExist of iceberg-go's file IO, gocloud's NotFound from a read
// of a file that was opened, S3's NoSuchKey), wrapped or not, and not by
// words in the message.
func TestGoneByType(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	_, blobErr := b.NewRangeReader(ctx, "data/missing.parquet", 0, 10, nil)
	if blobErr == nil {
		t.Fatal("reading a missing blob succeeded")
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"path error", fmt.Errorf("read manifest: %w", &fs.PathError{Op: "open", Path: "m.avro", Err: fs.ErrNotExist}), true},
		{"gocloud not found", fmt.Errorf("read data file: %w", blobErr), true},
		{"s3 no such key", fmt.Errorf("get: %w", &types.NoSuchKey{}), true},
		{"s3 not found", &types.NotFound{}, true},
		{"words only", errors.New(`decode manifest: unknown field "no such file"`), false},
		{"canceled", fmt.Errorf("scan: %w", context.Canceled), false},
	} {
		if got := gone(tc.err); got != tc.want {
			t.Errorf("%s: gone(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
