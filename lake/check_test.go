package lake_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cdclake/cdclake/internal/s3test"
	"github.com/cdclake/cdclake/lake"
)

// wantCheck runs Check and compares its one-line message.
func wantCheck(t *testing.T, b lake.Bucket, want string) error {
	t.Helper()
	err := lake.Check(t.Context(), b)
	if err == nil {
		t.Fatalf("Check succeeded, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("Check error =\n  %v\nwant\n  %s", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Check error is not one line: %q", err)
	}
	return err
}

func TestCheckFile(t *testing.T) {
	b := newFileBucket(t)
	if err := lake.Check(t.Context(), b); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if entries, _ := os.ReadDir(b.Root()); len(entries) != 0 {
		t.Errorf("Check left %v behind", entries)
	}
	if err := lake.Check(t.Context(), lake.WithPrefix(b, "p")); err != nil {
		t.Fatalf("Check through WithPrefix: %v", err)
	}
}

func TestCheckFileInTheWay(t *testing.T) {
	// A file where the probe folder should be fails for root too.
	b := newFileBucket(t)
	if err := os.WriteFile(filepath.Join(b.Root(), "_cdclake"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := wantCheck(t, b, "lake "+b.Root()+" is not writable: not a directory (a file is in the way of a folder; move it or choose another --lake)")
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Check error does not wrap ENOTDIR: %#v", err)
	}
	// The same through the decorator.
	if err := os.MkdirAll(filepath.Join(b.Root(), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Root(), "x", "_cdclake"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, lake.WithPrefix(b, "x"), "lake "+b.Root()+" is not writable: not a directory (a file is in the way of a folder; move it or choose another --lake)")
}

func TestCheckFileNotWritable(t *testing.T) {
	b := newFileBucket(t)
	reason := "permission denied"
	if os.Geteuid() == 0 {
		// Permission bits do not stop root; the immutable flag does.
		if out, err := exec.Command("chattr", "+i", b.Root()).CombinedOutput(); err != nil {
			t.Skipf("running as root and chattr +i is unavailable: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", b.Root()).Run() })
		reason = "operation not permitted"
	} else {
		if err := os.Chmod(b.Root(), 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(b.Root(), 0o755) })
	}
	wantCheck(t, b, "lake "+b.Root()+" is not writable: "+reason+" (make the folder writable by this user or choose another --lake)")
}

func TestCheckS3(t *testing.T) {
	for _, srv := range s3test.All(t) {
		t.Run(srv.Name, func(t *testing.T) {
			srv.Env(t)
			srv.CreateBucket(t, "lake")

			t.Run("OK", func(t *testing.T) {
				for _, prefix := range []string{"", "a/b"} {
					b := newS3Bucket(t, lake.S3Options{Bucket: "lake", Prefix: prefix})
					if err := lake.Check(t.Context(), b); err != nil {
						t.Fatalf("Check(prefix %q): %v", prefix, err)
					}
				}
				var keys []string
				b := newS3Bucket(t, lake.S3Options{Bucket: "lake"})
				b.Iter(t.Context(), "", func(k string) error { keys = append(keys, k); return nil })
				if len(keys) != 0 {
					t.Errorf("Check left %q behind", keys)
				}
			})

			t.Run("MissingBucket", func(t *testing.T) {
				b := newS3Bucket(t, lake.S3Options{Bucket: "no-such-bucket", Prefix: "lake"})
				wantCheck(t, b, `s3 bucket "no-such-bucket" does not exist (create it or fix --lake)`)
			})

			t.Run("NoCredentials", func(t *testing.T) {
				t.Setenv("AWS_ACCESS_KEY_ID", "")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "")
				b := newS3Bucket(t, lake.S3Options{Bucket: "lake"})
				wantCheck(t, b, `no AWS credentials for s3 bucket "lake" (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role)`)
			})

			if !srv.EnforcesAuth {
				return // gofakes3 accepts any credentials
			}
			t.Run("WrongSecret", func(t *testing.T) {
				secret := "wrong-" + srv.SecretKey
				t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
				b := newS3Bucket(t, lake.S3Options{Bucket: "lake"})
				err := wantCheck(t, b, `access to s3 bucket "lake" denied: SignatureDoesNotMatch (check AWS credentials/policy)`)
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("Check error shows the secret key: %v", err)
				}
			})
			t.Run("UnknownAccessKey", func(t *testing.T) {
				t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN")
				b := newS3Bucket(t, lake.S3Options{Bucket: "lake"})
				// versitygw answers 404 XAdminUserNotFound where AWS says 403 InvalidAccessKeyId.
				wantCheck(t, b, `access to s3 bucket "lake" denied: XAdminUserNotFound (check AWS credentials/policy)`)
			})
		})
	}
}

func TestCheckS3Unreachable(t *testing.T) {
	s3test.Fake(t).Env(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// The explicit endpoint wins over AWS_ENDPOINT_URL_S3 from Env.
	b := newS3Bucket(t, lake.S3Options{Bucket: "lake", Endpoint: "http://" + addr})
	wantCheck(t, b, `cannot reach the S3 endpoint http://`+addr+` for s3 bucket "lake": dial tcp `+addr+`: connect: connection refused (check --lake, AWS_ENDPOINT_URL_S3 and the network)`)
}
