package config

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are one line
// each, that a value from the environment never shows in an error, and
// that a Config it accepts keeps the rules. The seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	validName := regexp.MustCompile(`^[a-z0-9_]{1,55}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		// two runs that differ only in the secret: their errors must not
		// differ, or a message showed it
		run := func(secret string) (*Config, string) {
			c, err := Parse(data, env(map[string]string{
				"PW": secret, "HOST": "db.internal", "EMPTY": "", "ROWS": "100",
			}))
			if (c == nil) == (err == nil) {
				t.Fatalf("config %v with error %v", c, err)
			}
			if err == nil {
				return c, ""
			}
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				for _, e := range joined.Unwrap() {
					if strings.Contains(e.Error(), "\n") {
						t.Fatalf("error on several lines: %q", e.Error())
					}
				}
			}
			return nil, err.Error()
		}
		c, msg1 := run("Zq-s3cr3t-One/@:%zz")
		_, msg2 := run("Zq-s3cr3t-Two/@:%zz")
		if msg1 != msg2 {
			t.Fatalf("errors depend on a variable's value:\n%s\n%s", msg1, msg2)
		}
		if c == nil {
			return
		}
		if len(c.Sources) == 0 {
			t.Fatal("a config without sources")
		}
		var names []string
		for _, s := range c.Sources {
			if !validName.MatchString(s.Name) || slices.Contains(names, s.Name) {
				t.Fatalf("bad or repeated name %q", s.Name)
			}
			names = append(names, s.Name)
			if s.URL == "" || s.FlushInterval < 0 || s.FlushBytes < 0 || s.MemoryBudget < 0 || s.FlushRows < 0 || s.SnapshotWorkers < 0 {
				t.Fatalf("bad source %+v", s)
			}
		}
		if c.Lake == "" || c.Compaction.Interval < 0 || c.Compaction.OrphanAge <= 0 {
			t.Fatalf("bad config %+v", c)
		}
	})
}
