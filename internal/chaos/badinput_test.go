package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lakeSecret is a secret access key put where it does not belong (in
// --lake); it must not be shown either.
const lakeSecret = "chaos-S3-secret-0d5e2b7a91"

// TestChaosBadInput runs "cdclake ingest" on malformed sources, lakes,
// catalogs and flags: each must exit 1 with a one-line message naming
// the problem, never a panic, and create nothing on the source.
func TestChaosBadInput(t *testing.T) {
	runBadInput(t)
}

func runBadInput(t *testing.T) {
	src := startSource(t, "shop", nil)
	src.pg.Exec(t, "shop", "CREATE TABLE orders (id int PRIMARY KEY)",
		"CREATE ROLE plain LOGIN PASSWORD '"+pgPassword+"'")
	srv := s3Server(t)
	suiteLog.Secret(lakeSecret)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	port := src.pg.Port
	good := src.url
	cat := func() string { return filepath.Join(t.TempDir(), "catalog.db") }
	pw := pgPassword
	cases := []struct {
		name string
		args []string
		want string
	}{
		// --source
		{"no source", nil, "--source is required"},
		{"source without value", []string{"--source"}, "flag needs an argument: -source"},
		{"source not a URL", []string{"--source", "notaurl"}, "--source is not a valid PostgreSQL URL"},
		{"source of another database kind", []string{"--source", "mysql://chaos:" + pw + "@127.0.0.1/shop"}, "--source is not a valid PostgreSQL URL"},
		{"source port out of range", []string{"--source", "postgres://chaos:" + pw + "@127.0.0.1:99999/shop"}, "invalid port"},
		{"source host unterminated", []string{"--source", "postgres://chaos:" + pw + "@[::1/shop"}, "failed to parse as URL"},
		{"source keyword form, bad sslmode", []string{"--source", "host=127.0.0.1 password=" + pw + " sslmode=bogus"}, "sslmode is invalid"},
		{"source password in query, bad sslmode", []string{"--source", fmt.Sprintf("postgres://chaos@127.0.0.1:%d/shop?password=%s&sslmode=bogus", port, pw)}, "sslmode is invalid"},
		{"source CA file missing", []string{"--source", fmt.Sprintf("postgres://chaos:%s@127.0.0.1:%d/shop?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", pw, port)}, "unable to read CA file"},
		{"source unreachable", []string{"--source", "postgres://chaos:" + pw + "@127.0.0.1:1/shop"}, "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"source wrong password", []string{"--source", src.pg.UserURL("chaos", "wrong-"+pw, "shop")}, `rejected user "chaos"`},
		{"source database missing", []string{"--source", src.pg.UserURL("chaos", pw, "nope")}, `database "nope" does not exist`},
		{"source role without REPLICATION", []string{"--source", src.pg.UserURL("plain", pw, "shop")}, `user "plain" lacks the REPLICATION attribute`},
		{"tables missing", []string{"--source", good, "--tables", "public.orders,public.nope"}, "table public.nope named in --tables does not exist"},
		// --lake and --catalog
		{"lake scheme", []string{"--source", good, "--lake", "ftp://x/y"}, `unsupported lake scheme "ftp"`},
		{"lake s3 without bucket", []string{"--source", good, "--lake", "s3://", "--catalog", cat()}, "has no bucket name"},
		{"lake s3 without catalog", []string{"--source", good, "--lake", "s3://lake/x"}, "an s3:// lake needs --catalog"},
		{"lake s3 with query", []string{"--source", good, "--lake", "s3://lake/x?versionId=1", "--catalog", cat()}, "query strings and fragments are not supported"},
		{"lake s3 with credentials", []string{"--source", good, "--lake", "s3://AKIACHAOS:" + lakeSecret + "@lake/x", "--catalog", cat()}, "credentials do not belong in --lake"},
		{"lake file URL relative", []string{"--source", good, "--lake", "file://relative/lake"}, "file URLs need an absolute path"},
		{"lake bucket missing", []string{"--source", good, "--lake", "s3://missing/x", "--catalog", cat()}, `"missing"`},
		{"lake under a file", []string{"--source", good, "--lake", filepath.Join(notDir, "lake")}, "not a directory"},
		{"catalog scheme", []string{"--source", good, "--lake", t.TempDir(), "--catalog", "ftp://x/c.db"}, "unknown scheme"},
		{"catalog unreachable", []string{"--source", good, "--lake", t.TempDir(), "--catalog", "postgres://cat:" + pw + "@127.0.0.1:1/catalog"}, "open catalog"},
		// flags
		{"flush interval not a duration", []string{"--source", good, "--flush-interval", "abc"}, `invalid value "abc" for flag -flush-interval`},
		{"flush interval negative", []string{"--source", good, "--flush-interval", "-5s"}, "--flush-interval"},
		{"snapshot mode", []string{"--source", good, "--snapshot", "maybe"}, `--snapshot must be initial or never, not "maybe"`},
		{"snapshot workers not a number", []string{"--source", good, "--snapshot-workers", "x"}, `invalid value "x" for flag -snapshot-workers`},
		{"unknown flag", []string{"--source", good, "--bogus"}, "flag provided but not defined: -bogus"},
		{"stray argument", []string{"--source", good, "extra"}, `unexpected argument "extra"`},
	}
	env := childEnv(t, srv, srv.Endpoint)
	t.Run("cases", func(t *testing.T) { // returns when the parallel cases are done
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				args := []string{"ingest", "--catch-up"}
				if !strings.Contains(strings.Join(tc.args, " "), "--lake") {
					args = append(args, "--lake", t.TempDir())
				}
				args = append(args, tc.args...)
				code, out := runOnce(t, "bad-input", env, time.Minute, args...)
				msg := lastError(out)
				t.Log(msg)
				if code != 1 || !strings.Contains(msg, tc.want) {
					t.Errorf("exit %d, %q; want exit 1 and a message containing %q", code, msg, tc.want)
				}
				if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
					t.Errorf("output shows a panic:\n%s", tail(out, 2000))
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("message is not one line: %q", msg)
				}
			})
		}
	})
	// nothing was created on the source by any failed start
	var slots, pubs int
	if err := src.pg.QueryRow("shop", "SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication)", &slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Errorf("%d slots and %d publications after failed starts, want none", slots, pubs)
	}
}
