package s3test_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdclake/cdclake/internal/s3test"
)

func TestServers(t *testing.T) {
	servers := s3test.All(t)
	if want := 1 + btoi(os.Getenv(s3test.EnvVersity) != ""); len(servers) != want {
		t.Fatalf("All returned %d servers, want %d", len(servers), want)
	}
	for _, srv := range servers {
		t.Run(srv.Name, func(t *testing.T) {
			if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
				t.Errorf("Endpoint = %q, want one on 127.0.0.1", srv.Endpoint)
			}
			srv.CreateBucket(t, "one")
			srv.CreateBucket(t, "two")

			// Code under test sees the server through the standard chain.
			srv.Env(t)
			cfg, err := config.LoadDefaultConfig(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != srv.Region {
				t.Errorf("region from the chain = %q, want %q", cfg.Region, srv.Region)
			}
			client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
			out, err := client.ListBuckets(t.Context(), &s3.ListBucketsInput{})
			if err != nil {
				t.Fatalf("ListBuckets through the AWS chain: %v", err)
			}
			var names []string
			for _, b := range out.Buckets {
				names = append(names, aws.ToString(b.Name))
			}
			slices.Sort(names) // gofakes3 lists buckets in random order
			if strings.Join(names, ",") != "one,two" {
				t.Errorf("buckets = %q, want [one two]", names)
			}
		})
	}
}

func TestVersitySkipsWithoutBinary(t *testing.T) {
	t.Setenv(s3test.EnvVersity, "")
	skipped := true
	t.Run("inner", func(t *testing.T) {
		s3test.Versity(t)
		skipped = false
	})
	if !skipped {
		t.Error("Versity did not skip with CDCLAKE_VERSITYGW unset")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
