package catalog

import (
	"context"
	"strings"
	"testing"
)

// TestRedact checks that no password survives Redact, whether or not the
// URL parses: passwords with unencoded #, %, / or @ make url.Parse fail
// or misread the URL.
func TestRedact(t *testing.T) {
	cases := []struct{ url, secret, want string }{
		{"postgres://cdc:s3cret@db.example:5432/lake", "s3cret", "postgres://cdc:xxxxx@db.example:5432/lake"},
		{"postgres://cdc:pa#ss@db/lake", "pa#ss", "postgres://cdc:xxxxx@db/lake"},
		{"postgres://cdc:50%off@db/lake", "50%off", "postgres://cdc:xxxxx@db/lake"},
		{"postgres://cdc:a/b@db/lake", "a/b", "postgres://cdc:xxxxx@db/lake"},
		{"postgres://cdc:123/456@db/lake", "123/456", "postgres://cdc:xxxxx@db/lake"},
		{"postgres://cdc:p@ss@db/lake", "p@ss", "postgres://cdc:xxxxx@db/lake"},
		{"postgresql://cdc:%zz#/x@db:5432/lake?sslmode=require", "%zz#/x", "postgresql://cdc:xxxxx@db:5432/lake?sslmode=require"},
		{"postgres://db/lake?user=cdc&password=hunter2&sslmode=disable", "hunter2", "postgres://db/lake?user=cdc&password=xxxxx&sslmode=disable"},
		{"postgres://db/lake?password=a#b%c", "a#b%c", "postgres://db/lake?password=xxxxx"},
		{"postgres://cdc@db/lake", "", "postgres://cdc@db/lake"},
		{"/var/lib/cdclake/catalog.db", "", "/var/lib/cdclake/catalog.db"},
	}
	for _, c := range cases {
		got := Redact(c.url)
		if c.secret != "" && strings.Contains(got, c.secret) {
			t.Errorf("Redact(%q) = %q: the password shows", c.url, got)
		}
		if got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.url, got, c.want)
		}
	}
}

// TestOpenErrorHidesPassword opens a catalog whose URL does not parse and
// checks the error does not print the password.
func TestOpenErrorHidesPassword(t *testing.T) {
	for _, u := range []string{"postgres://cdc:pa#ss@127.0.0.1:1/lake", "postgres://cdc:50%off@127.0.0.1:1/lake"} {
		_, err := Open(context.Background(), Options{URL: u, Warehouse: "file:///tmp/x"})
		if err == nil {
			t.Fatalf("Open(%q) succeeded", u)
		}
		if strings.Contains(err.Error(), "pa#ss") || strings.Contains(err.Error(), "50%off") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}
