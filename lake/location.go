package lake

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Location is a parsed lake address: a local folder or an S3 bucket with an
// optional key prefix.
type Location struct {
	// Scheme is "file" or "s3".
	Scheme string
	// Path is the absolute, cleaned root folder of a file lake.
	Path string
	// Bucket is the S3 bucket name of an s3 lake.
	Bucket string
	// Prefix is the key prefix inside Bucket, without leading or trailing
	// slashes; empty means the whole bucket.
	Prefix string
}

const acceptedForms = "use a folder path, file:///abs/path or s3://bucket/prefix"

var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// Parse parses a lake address as given to --lake: a bare path (relative
// paths are made absolute against the working directory), file:///abs/path,
// or s3://bucket/optional/prefix.
func Parse(raw string) (Location, error) {
	if strings.TrimSpace(raw) == "" {
		return Location{}, fmt.Errorf("empty lake location (%s)", acceptedForms)
	}
	m := schemeRE.FindStringSubmatch(raw)
	if m == nil {
		return parseFilePath(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole input, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Location{}, fmt.Errorf("parse lake location: %w (%s)", err, acceptedForms)
	}
	if u.User != nil {
		return Location{}, fmt.Errorf("lake location %q: credentials do not belong in --lake (they come from the AWS environment: AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Location{}, fmt.Errorf("lake location %q: query strings and fragments are not supported (%s)", raw, acceptedForms)
	}
	switch strings.ToLower(m[1]) {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("lake location %q: file URLs need an absolute path, as in file:///abs/path", raw)
		}
		return parseFilePath(u.Path)
	case "s3":
		return parseS3(raw, u)
	default:
		return Location{}, fmt.Errorf("unsupported lake scheme %q in %q (%s)", m[1], raw, acceptedForms)
	}
}

func parseFilePath(p string) (Location, error) {
	if strings.ContainsRune(p, 0) {
		return Location{}, fmt.Errorf("lake path %q contains a NUL byte", p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Location{}, fmt.Errorf("make lake path %q absolute: %w", p, err)
	}
	return Location{Scheme: "file", Path: abs}, nil
}

func parseS3(raw string, u *url.URL) (Location, error) {
	if u.Host == "" {
		return Location{}, fmt.Errorf("lake location %q has no bucket name (use s3://bucket/prefix)", raw)
	}
	if u.Port() != "" {
		return Location{}, fmt.Errorf("lake location %q: put only the bucket name after s3:// (set the endpoint with AWS_ENDPOINT_URL_S3)", raw)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return Location{}, fmt.Errorf("lake location %q: bad prefix: %w", raw, err)
		}
	}
	return Location{Scheme: "s3", Bucket: u.Host, Prefix: prefix}, nil
}

// URL returns the canonical URL of the location: file:///abs/path or
// s3://bucket/prefix (s3://bucket without a prefix). Special characters are
// percent-encoded, so Parse(l.URL()) gives l back.
func (l Location) URL() string {
	switch l.Scheme {
	case "file":
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(l.Path)}).String()
	case "s3":
		u := &url.URL{Scheme: "s3", Host: l.Bucket}
		if l.Prefix != "" {
			u.Path = "/" + l.Prefix
		}
		return u.String()
	}
	return ""
}

// Join returns the full URL of the object at key (a key valid for
// ValidateKey), such as file:///abs/path/key or s3://bucket/prefix/key.
func (l Location) Join(key string) string {
	switch l.Scheme {
	case "file":
		return (&url.URL{Scheme: "file", Path: path.Join(filepath.ToSlash(l.Path), key)}).String()
	case "s3":
		return (&url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + joinKey(l.Prefix, key)}).String()
	}
	return ""
}

// String returns URL().
func (l Location) String() string { return l.URL() }

// joinKey prefixes key with prefix (no slashes at either end of prefix).
func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "/" + key
}
