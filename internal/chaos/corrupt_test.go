package chaos

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cdclake/cdclake/lakeformat"
)

// TestChaosCorruptParquet damages data files of a changelog in the S3
// lake (one truncated, one with a byte flipped inside a page) and checks
// that VerifyTable names exactly those files, and that reading the
// changelog fails rather than returning the damaged rows.
func TestChaosCorruptParquet(t *testing.T) {
	ctx := context.Background()
	src := startSource(t, "corrupt", nil)
	tables := []string{"items"}
	wl := &Workload{URL: src.admin, Tables: tables, InitialRows: 20_000}
	if err := wl.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	src.publish(t, tables...)
	srv := s3Server(t)
	catPath := filepath.Join(t.TempDir(), "catalog.db")
	args := []string{"ingest", "--source", src.url, "--lake", "s3://lake/corrupt", "--catalog", catPath, "--catch-up"}
	env := childEnv(t, srv, srv.Endpoint)
	for _, sql := range []string{"", "UPDATE items SET ver = ver + 1, pad = 'changed' WHERE id % 10 = 0", "DELETE FROM items WHERE id % 7 = 0"} {
		if sql != "" {
			src.pg.Exec(t, "corrupt", sql)
		}
		if code, out := runOnce(t, "corrupt", env, 2*time.Minute, args...); code != 0 {
			t.Fatalf("ingest exited %d: %s", code, lastError(out))
		}
	}
	cat := openCatalog(t, catPath, "s3://lake/corrupt", srv)
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent("corrupt", "public", "items"))
	if err != nil {
		t.Fatal(err)
	}
	checks, err := VerifyTable(ctx, tbl)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Err != nil {
			t.Fatalf("%s is damaged before the test damaged anything: %v", c.Path, c.Err)
		}
	}
	if len(checks) < 2 {
		t.Fatalf("%d data files, want at least 2", len(checks))
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].Rows > checks[j].Rows })

	client := srv.Client()
	damage := func(path string, f func([]byte) []byte) {
		t.Helper()
		bucket, key, _ := strings.Cut(strings.TrimPrefix(path, "s3://"), "/")
		obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		data = f(data)
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	truncated, flipped := checks[1].Path, checks[0].Path
	damage(truncated, func(b []byte) []byte { return b[:len(b)/2] })
	damage(flipped, func(b []byte) []byte {
		// a byte in the first column chunk's data, past its page header
		b[len(b)/8] ^= 0x5a
		return b
	})

	checks, err = VerifyTable(ctx, tbl)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, c := range checks {
		if c.Err != nil {
			found[c.Path] = c.Err.Error()
		}
	}
	t.Logf("VerifyTable found: %q", found)
	if _, ok := found[truncated]; !ok {
		t.Errorf("truncated file %s not detected", truncated)
	}
	if _, ok := found[flipped]; !ok {
		t.Errorf("file %s with a flipped byte not detected", flipped)
	}
	if len(found) != 2 {
		t.Errorf("%d files reported damaged, want the 2 damaged ones", len(found))
	}
	// a reader of the lake must fail, not return the damaged rows
	if _, err := ReadChangelog(ctx, cat, "corrupt", "items"); err == nil {
		t.Errorf("reading the changelog with damaged files succeeded")
	} else {
		t.Logf("reading the changelog fails: %v", err)
	}
}
