package catalog

import (
	"net/url"
	"path"
	"strings"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/cdclake/cdclake/lakeformat"
)

var hostileNames = []string{
	"orders", "../x", "a/b", "%2e%2e", "%2E%2E", ".", "..", "été", "a b?#", "~", "%", "%zz", "a\x01b", ".hidden",
	strings.Repeat("x", 63), "naïve/../../etc", "a.b", "%25",
}

func TestIdentPart(t *testing.T) {
	seen := map[string]string{}
	for _, name := range hostileNames {
		t.Run(name, func(t *testing.T) {
			part := lakeformat.IdentPart(name)
			if got := lakeformat.NamePart(part); got != name {
				t.Errorf("NamePart(IdentPart(%q)) = %q (part %q)", name, got, part)
			}
			if err := icecat.ValidateTableIdentifier([]string{"src", part, part + "__changes"}); err != nil {
				t.Errorf("iceberg-go refuses %q: %v", part, err)
			}
			if other, ok := seen[part]; ok {
				t.Errorf("%q and %q both encode to %q", name, other, part)
			}
			seen[part] = name
		})
	}
	for _, plain := range []string{"orders", "été", "a b?#", strings.Repeat("x", 63), "%2e%2e", "%zz"} {
		if got := lakeformat.NamePart(plain); got != plain {
			t.Errorf("NamePart(%q) = %q, want it unchanged", plain, got)
		}
	}
}

func TestKeySegment(t *testing.T) {
	seen := map[string]string{}
	for _, name := range hostileNames {
		seg := KeySegment(name)
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") || strings.ContainsAny(seg, "/%\\") {
			t.Errorf("KeySegment(%q) = %q is not a safe segment", name, seg)
		}
		if other, ok := seen[seg]; ok {
			t.Errorf("%q and %q both encode to %q", name, other, seg)
		}
		seen[seg] = name
	}
	if got := KeySegment("orders__changes"); got != "orders__changes" {
		t.Errorf("plain names must stay: got %q", got)
	}
}

func TestTableLocation(t *testing.T) {
	const wh = "file:///lake"
	if got, want := TableLocation(wh, []string{"shop", "public", "orders"}), "file:///lake/shop.public.db/orders"; got != want {
		t.Errorf("plain: got %q, want iceberg-go's default %q", got, want)
	}
	seen := map[string]bool{}
	for _, name := range hostileNames {
		for _, ident := range [][]string{
			{"shop", lakeformat.IdentPart(name), lakeformat.IdentPart(name) + "__changes"},
			{lakeformat.IdentPart(name), "public", lakeformat.IdentPart(name)},
		} {
			loc := TableLocation(wh+"/", ident)
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("%q: %v", loc, err)
			}
			if p := path.Clean(u.Path); p != u.Path || !strings.HasPrefix(p, "/lake/") || strings.Count(p, "/") != 3 {
				t.Errorf("%v: location %q leaves its folder", ident, loc)
			}
			if seen[loc] {
				t.Errorf("%v: location %q used twice", ident, loc)
			}
			seen[loc] = true
		}
	}
	if a, b := TableLocation(wh, []string{"a.b", "c", "t"}), TableLocation(wh, []string{"a", "b.c", "t"}); a == b {
		t.Errorf("dotted namespace levels collide: %q", a)
	}
}
