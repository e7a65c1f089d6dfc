package lake_test

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/lake/laketest"
)

func newS3Bucket(t *testing.T, opts lake.S3Options) *lake.S3Bucket {
	t.Helper()
	b, err := lake.NewS3Bucket(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestS3Bucket(t *testing.T) {
	for _, srv := range s3test.All(t) {
		t.Run(srv.Name, func(t *testing.T) {
			n := 0
			newBucket := func(prefix string) func(t *testing.T) lake.Bucket {
				return func(t *testing.T) lake.Bucket {
					srv.Env(t)
					n++
					name := fmt.Sprintf("lake-%d", n)
					srv.CreateBucket(t, name)
					return newS3Bucket(t, lake.S3Options{Bucket: name, Prefix: prefix})
				}
			}
			t.Run("NoPrefix", func(t *testing.T) { laketest.AcceptanceTest(t, newBucket("")) })
			t.Run("Prefix", func(t *testing.T) { laketest.AcceptanceTest(t, newBucket("/some/prefix/")) })
		})
	}
}

func TestS3BucketSharesConfig(t *testing.T) {
	srv := s3test.Fake(t)
	srv.Env(t)
	srv.CreateBucket(t, "lake")
	loc, err := lake.Parse("s3://lake/warehouse/")
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := lake.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	b := bucket.(*lake.S3Bucket)
	want := lake.S3Options{Bucket: "lake", Prefix: "warehouse", Region: srv.Region, Endpoint: srv.Endpoint, PathStyle: true}
	if got := b.Options(); got != want {
		t.Errorf("Options() = %+v, want %+v", got, want)
	}
	if got := b.String(); got != "s3://lake/warehouse" {
		t.Errorf("String() = %q", got)
	}
	if err := b.Put(t.Context(), "t/data.parquet", strings.NewReader("PAR1"), 4); err != nil {
		t.Fatal(err)
	}
	// Another client built from AWSConfig (as iceberg-go's S3 IO does)
	// reads the same object at the address Location.Join gives.
	cfg := b.AWSConfig()
	if cfg.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired ||
		cfg.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired {
		t.Errorf("checksum modes = %v, %v; want WhenRequired for an S3-compatible endpoint",
			cfg.RequestChecksumCalculation, cfg.ResponseChecksumValidation)
	}
	u, err := url.Parse(loc.Join("t/data.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = b.Options().PathStyle })
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{
		Bucket: aws.String(u.Host),
		Key:    aws.String(strings.TrimPrefix(u.Path, "/")),
	})
	if err != nil {
		t.Fatalf("GetObject(%s) with the shared config: %v", u, err)
	}
	defer out.Body.Close()
	if data, _ := io.ReadAll(out.Body); string(data) != "PAR1" {
		t.Errorf("object = %q, want PAR1", data)
	}
}

func TestS3RegionDefault(t *testing.T) {
	srv := s3test.Fake(t)
	srv.Env(t)
	t.Setenv("AWS_REGION", "")
	if got := newS3Bucket(t, lake.S3Options{Bucket: "x"}).Options().Region; got != "us-east-1" {
		t.Errorf("default region = %q, want us-east-1", got)
	}
	if got := newS3Bucket(t, lake.S3Options{Bucket: "x", Region: "eu-west-1"}).Options().Region; got != "eu-west-1" {
		t.Errorf("explicit region = %q, want eu-west-1", got)
	}
}
