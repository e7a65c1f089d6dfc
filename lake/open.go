package lake

import (
	"context"
	"fmt"
)

// Open returns the Bucket for a parsed location: a FileBucket for file
// locations, an S3Bucket (configured from the standard AWS chain) for s3
// locations.
func Open(ctx context.Context, loc Location) (Bucket, error) {
	switch loc.Scheme {
	case "file":
		return NewFileBucket(loc.Path)
	case "s3":
		return NewS3Bucket(ctx, S3Options{Bucket: loc.Bucket, Prefix: loc.Prefix})
	}
	return nil, fmt.Errorf("unsupported lake scheme %q (%s)", loc.Scheme, acceptedForms)
}
