package chaos

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdclake/cdclake/internal/s3test"
)

// TestChaosSecretsNotLogged searches every line the suite's cdclake
// processes printed and every error its tests saw for the source's
// password and the S3 secret keys. It runs last (file order); run alone
// it first runs the bad-input cases, whose errors are where a password
// would most likely show.
func TestChaosSecretsNotLogged(t *testing.T) {
	if lines, _, _ := suiteLog.Stats(); lines == 0 {
		runBadInput(t)
	}
	leaks, err := suiteLog.Rescan()
	if err != nil {
		t.Fatal(err)
	}
	lines, bytes, _ := suiteLog.Stats()
	t.Logf("searched %d lines (%d bytes) of logs and errors for %d secrets", lines, bytes, len(suiteLog.secretList()))
	results.add("secrets", len(leaks))
	for i, l := range leaks {
		if i == 20 {
			t.Errorf("... and %d more", len(leaks)-i)
			break
		}
		t.Errorf("a secret shows in: %s", l)
	}
}

// secretsAtRest searches every object of the S3 server's lake bucket and
// the catalog file for the suite's secrets, and returns the objects that
// hold one.
func secretsAtRest(t *testing.T, srv *s3test.Server, files ...string) (found []string, objects int) {
	t.Helper()
	ctx := context.Background()
	client := srv.Client()
	secrets := suiteLog.secretList()
	scan := func(name string, data []byte) {
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				found = append(found, name)
				return
			}
		}
	}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String("lake")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lake"), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			objects++
			scan("s3://lake/"+aws.ToString(o.Key), data)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		objects++
		scan(f, data)
	}
	return found, objects
}
