package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// EnvVersity names the environment variable holding the path of the
// versitygw binary. When it is unset, Versity skips the test.
const EnvVersity = "CDCLAKE_VERSITYGW"

// Server is a running S3 server.
type Server struct {
	// Name identifies the server kind in subtest names: "gofakes3" or
	// "versitygw".
	Name string
	// Endpoint is the base URL, such as http://127.0.0.1:41234.
	Endpoint string
	// AccessKey and SecretKey are credentials the server accepts.
	AccessKey, SecretKey string
	// Region is the region the server expects in signatures.
	Region string
	// EnforcesAuth reports whether the server rejects bad credentials
	// (versitygw does, gofakes3 accepts anything).
	EnforcesAuth bool
}

// All returns every server the environment offers: always the in-process
// fake, plus versitygw when CDCLAKE_VERSITYGW is set.
func All(t testing.TB) []*Server {
	t.Helper()
	servers := []*Server{Fake(t)}
	if os.Getenv(EnvVersity) != "" {
		servers = append(servers, Versity(t))
	}
	return servers
}

// Env points the standard AWS chain of the current test at the server with
// t.Setenv: credentials, region and AWS_ENDPOINT_URL_S3. It also disables
// the EC2 metadata service and the host's shared config and credentials
// files so nothing from the host leaks in. Like t.Setenv it cannot be used
// in parallel tests.
func (s *Server) Env(t testing.TB) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "aws-empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatalf("write empty AWS config: %v", err)
	}
	for _, name := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	t.Setenv("AWS_ENDPOINT_URL_S3", s.Endpoint)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
}

// Client returns an S3 client for the server with its root credentials,
// independent of the environment.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket on the server, failing the test on error.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	_, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("create bucket %q on %s: %v", name, s.Name, err)
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
