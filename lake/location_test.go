package lake_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdclake/cdclake/lake"
)

func TestParse(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		raw  string
		want lake.Location
		url  string
	}{
		{"./lake", lake.Location{Scheme: "file", Path: filepath.Join(wd, "lake")}, "file://" + filepath.Join(wd, "lake")},
		{"lake/sub/", lake.Location{Scheme: "file", Path: filepath.Join(wd, "lake/sub")}, "file://" + filepath.Join(wd, "lake/sub")},
		{"/data/lake", lake.Location{Scheme: "file", Path: "/data/lake"}, "file:///data/lake"},
		{"/data/../data/./lake/", lake.Location{Scheme: "file", Path: "/data/lake"}, "file:///data/lake"},
		{"/data/my lake", lake.Location{Scheme: "file", Path: "/data/my lake"}, "file:///data/my%20lake"},
		{"file:///data/lake", lake.Location{Scheme: "file", Path: "/data/lake"}, "file:///data/lake"},
		{"file:///data/my%20lake", lake.Location{Scheme: "file", Path: "/data/my lake"}, "file:///data/my%20lake"},
		{"file://localhost/data/lake", lake.Location{Scheme: "file", Path: "/data/lake"}, "file:///data/lake"},
		{"FILE:///data/lake", lake.Location{Scheme: "file", Path: "/data/lake"}, "file:///data/lake"},
		{"s3://bucket", lake.Location{Scheme: "s3", Bucket: "bucket"}, "s3://bucket"},
		{"s3://bucket/", lake.Location{Scheme: "s3", Bucket: "bucket"}, "s3://bucket"},
		{"s3://bucket/a/b/", lake.Location{Scheme: "s3", Bucket: "bucket", Prefix: "a/b"}, "s3://bucket/a/b"},
		{"s3://my.bucket-1/lake", lake.Location{Scheme: "s3", Bucket: "my.bucket-1", Prefix: "lake"}, "s3://my.bucket-1/lake"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := lake.Parse(tc.raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tc.want {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
			if u := got.URL(); u != tc.url {
				t.Errorf("URL() = %q, want %q", u, tc.url)
			}
			again, err := lake.Parse(got.URL())
			if err != nil || again != got {
				t.Errorf("Parse(URL()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{"", "empty lake location (use a folder path, file:///abs/path or s3://bucket/prefix)"},
		{"gs://bucket/lake", `unsupported lake scheme "gs" in "gs://bucket/lake" (use a folder path, file:///abs/path or s3://bucket/prefix)`},
		{"https://example.com/lake", `unsupported lake scheme "https" in "https://example.com/lake" (use a folder path, file:///abs/path or s3://bucket/prefix)`},
		{"file://relative/lake", `lake location "file://relative/lake": file URLs need an absolute path, as in file:///abs/path`},
		{"s3://", `lake location "s3://" has no bucket name (use s3://bucket/prefix)`},
		{"s3:///prefix", `lake location "s3:///prefix" has no bucket name (use s3://bucket/prefix)`},
		{"s3://bucket/a/../b", `lake location "s3://bucket/a/../b": bad prefix: invalid key "a/../b": ".." segments are not allowed`},
		{"s3://bucket/a//b", `lake location "s3://bucket/a//b": bad prefix: invalid key "a//b": empty path segment`},
		{"s3://bucket/lake?region=eu-west-1", `lake location "s3://bucket/lake?region=eu-west-1": query strings and fragments are not supported (use a folder path, file:///abs/path or s3://bucket/prefix)`},
		{"s3://bucket:9000/lake", `lake location "s3://bucket:9000/lake": put only the bucket name after s3:// (set the endpoint with AWS_ENDPOINT_URL_S3)`},
		{"s3://key:secret@bucket/lake?x", `lake location "s3://key:xxxxx@bucket/lake?x": credentials do not belong in --lake (they come from the AWS environment: AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)`},
		{"s3://bucket/%zz", `parse lake location: invalid URL escape "%zz" (use a folder path, file:///abs/path or s3://bucket/prefix)`},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := lake.Parse(tc.raw)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Parse(%q) error =\n  %v\nwant\n  %s", tc.raw, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestLocationJoin(t *testing.T) {
	for _, tc := range []struct {
		loc  lake.Location
		key  string
		want string
	}{
		{lake.Location{Scheme: "file", Path: "/data/lake"}, "a/b.parquet", "file:///data/lake/a/b.parquet"},
		{lake.Location{Scheme: "file", Path: "/data/lake"}, "a b/ä.parquet", "file:///data/lake/a%20b/%C3%A4.parquet"},
		{lake.Location{Scheme: "s3", Bucket: "b"}, "a/b.parquet", "s3://b/a/b.parquet"},
		{lake.Location{Scheme: "s3", Bucket: "b", Prefix: "p/q"}, "a/b.parquet", "s3://b/p/q/a/b.parquet"},
	} {
		if got := tc.loc.Join(tc.key); got != tc.want {
			t.Errorf("%v.Join(%q) = %q, want %q", tc.loc, tc.key, got, tc.want)
		}
	}
}
