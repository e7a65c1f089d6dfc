package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Options configures NewS3Bucket. The zero value of every field means the
// default. Credentials are never options: they come from the standard AWS
// chain (environment, shared config and credentials files, SSO, instance or
// task roles).
type S3Options struct {
	// Bucket is the bucket name (required).
	Bucket string
	// Prefix is the key prefix inside the bucket that holds the lake;
	// leading and trailing slashes are ignored. Empty means the whole bucket.
	Prefix string
	// Region defaults to the AWS chain (AWS_REGION, shared config), then
	// us-east-1.
	Region string
	// Endpoint is the URL of an S3-compatible server, such as
	// http://127.0.0.1:7070. It defaults to AWS_ENDPOINT_URL_S3, then
	// AWS_ENDPOINT_URL, then endpoint_url in the shared config; empty means
	// AWS itself. With an endpoint, addressing is path-style and request and
	// response checksums are only used where the API requires them, which
	// S3-compatible servers need.
	Endpoint string
	// PathStyle forces path-style addressing (http://host/bucket/key) even
	// without an Endpoint.
	PathStyle bool
}

// S3Bucket is a Bucket stored in an S3 bucket under an optional prefix: the
// object at key "a/b.parquet" is s3://bucket/prefix/a/b.parquet. A single
// PutObject is atomic on S3, so Put needs no temporary object.
type S3Bucket struct {
	opts   S3Options // resolved: Prefix trimmed, Region and Endpoint filled in
	cfg    aws.Config
	client *s3.Client
}

var _ Bucket = (*S3Bucket)(nil)

// NewS3Bucket loads the AWS configuration from the standard chain, applies
// opts and returns the bucket. It makes no request; use Check to probe
// access.
func NewS3Bucket(ctx context.Context, opts S3Options) (*S3Bucket, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3 bucket name is empty (use --lake s3://bucket/prefix)")
	}
	opts.Prefix = strings.Trim(opts.Prefix, "/")
	if opts.Prefix != "" {
		if err := ValidateKey(opts.Prefix); err != nil {
			return nil, fmt.Errorf("s3 prefix: %w", err)
		}
	}
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	opts.Region = cfg.Region
	if opts.Endpoint == "" {
		opts.Endpoint = endpointFromEnv(cfg)
	}
	if opts.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(opts.Endpoint)
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		opts.PathStyle = true
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Set here too: the SDK lets AWS_ENDPOINT_URL_S3 override
		// cfg.BaseEndpoint, but an explicit Endpoint option wins.
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
	})
	return &S3Bucket{opts: opts, cfg: cfg, client: client}, nil
}

// endpointFromEnv returns the S3 endpoint the SDK would use from its
// standard environment variables or shared config, or "".
func endpointFromEnv(cfg aws.Config) string {
	if strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return ""
	}
	for _, name := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return aws.ToString(cfg.BaseEndpoint)
}

// AWSConfig returns the resolved AWS configuration (credentials, region,
// endpoint as BaseEndpoint, checksum modes) for other S3 clients, such as
// iceberg-go's S3 IO, to share. Path-style addressing is a client option and
// not part of it: see Options().PathStyle.
func (b *S3Bucket) AWSConfig() aws.Config { return b.cfg }

// Client returns the S3 client the bucket uses.
func (b *S3Bucket) Client() *s3.Client { return b.client }

// Options returns the resolved options: prefix without slashes, region,
// endpoint and path style as used.
func (b *S3Bucket) Options() S3Options { return b.opts }

// Location returns the s3:// location of the bucket and prefix.
func (b *S3Bucket) Location() Location {
	return Location{Scheme: "s3", Bucket: b.opts.Bucket, Prefix: b.opts.Prefix}
}

// String returns s3://bucket/prefix, for messages.
func (b *S3Bucket) String() string { return b.Location().URL() }

func (b *S3Bucket) key(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return joinKey(b.opts.Prefix, key), nil
}

// Put implements Bucket. A reader that is not an io.ReadSeeker is first
// buffered (in memory up to 8 MiB, then in a temporary file) so that the
// request can be signed and retried.
func (b *S3Bucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	body, n, cleanup, err := seekable(ctx, r, size)
	if err != nil {
		return fmt.Errorf("put object %q: %w", key, err)
	}
	defer cleanup()
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("put object %q: seek body: %w", key, err)
	}
	for attempt := 1; ; attempt++ {
		_, err = b.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(b.opts.Bucket),
			Key:           aws.String(k),
			Body:          body,
			ContentLength: aws.Int64(n),
		})
		if err == nil {
			return nil
		}
		// versitygw's posix backend answers ExistingObjectIsDirectory when
		// a concurrent delete removes the folder it is publishing into;
		// a retry succeeds. (A real folder in the way fails every time.)
		if apiCode(err) != "ExistingObjectIsDirectory" || attempt == 5 {
			return fmt.Errorf("put object %q: %w", key, err)
		}
		if _, serr := body.Seek(start, io.SeekStart); serr != nil {
			return fmt.Errorf("put object %q: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("put object %q: %w", key, ctx.Err())
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		}
	}
}

// Get implements Bucket.
func (b *S3Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := b.key(key)
	if err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.opts.Bucket),
		Key:    aws.String(k),
	})
	if err != nil {
		return nil, fmt.Errorf("get object %q: %w", key, s3NotFound(err))
	}
	return out.Body, nil
}

// Attributes implements Bucket.
func (b *S3Bucket) Attributes(ctx context.Context, key string) (Attrs, error) {
	k, err := b.key(key)
	if err != nil {
		return Attrs{}, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(b.opts.Bucket),
		Key:    aws.String(k),
	})
	if err != nil {
		return Attrs{}, fmt.Errorf("stat object %q: %w", key, s3NotFound(err))
	}
	return Attrs{Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Exists implements Bucket.
func (b *S3Bucket) Exists(ctx context.Context, key string) (bool, error) {
	return exists(ctx, b, key)
}

// Delete implements Bucket.
func (b *S3Bucket) Delete(ctx context.Context, key string) error {
	k, err := b.key(key)
	if err != nil {
		return err
	}
	_, err = b.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(b.opts.Bucket),
		Key:    aws.String(k),
	})
	if err != nil && !errors.Is(s3NotFound(err), ErrNotFound) {
		return fmt.Errorf("delete object %q: %w", key, err)
	}
	return nil
}

// Iter implements Bucket with ListObjectsV2, which returns keys in UTF-8
// binary order. Stored keys that are not valid keys here (folder markers
// ending in "/", keys with empty segments) are skipped.
func (b *S3Bucket) Iter(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ValidatePrefix(prefix); err != nil {
		return err
	}
	root := ""
	if b.opts.Prefix != "" {
		root = b.opts.Prefix + "/"
	}
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.opts.Bucket),
		Prefix: aws.String(root + prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list objects %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), root)
			if !ok || ValidateKey(key) != nil {
				continue
			}
			if err := fn(key); err != nil {
				return err
			}
		}
	}
	return nil
}

// s3NotFound wraps ErrNotFound around the errors S3 gives for a missing key:
// NoSuchKey from GET, NotFound (a bare 404) from HEAD.
func s3NotFound(err error) error {
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	if errors.As(err, &noKey) || errors.As(err, &notFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	// A HEAD has no body, hence no code: a bare 404 means a missing key.
	code := apiCode(err)
	if httpStatus(err) == 404 && (code == "" || code == "NotFound" || code == "NoSuchKey") {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
