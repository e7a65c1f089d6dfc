package catalog

import (
	"fmt"
	"strings"

	"github.com/cdclake/cdclake/lakeformat"
)

// PostgreSQL names (of sources, schemas, tables) may hold any character but
// NUL: "a/b", "../x", "%2e%2e", "été". Two encodings keep them safe:
//
//   - lakeformat.IdentPart turns a name into one level of an Iceberg
//     identifier (part of the lake's contract); lakeformat.NamePart
//     reverses it.
//   - KeySegment turns a name into one object-key segment made only of
//     [A-Za-z0-9._~-], never starting with ".": no name can add a level to
//     a key or climb out of the lake. TableLocation builds a new table's
//     location from it.
//
// KeySegment encodes a name as one object-key segment: letters, digits,
// "_", "-" and (not first) "." stay; every other byte, "~" included,
// becomes ~XX (upper-case hex). The result is never empty, ".", ".." or
// hidden, holds no "/" or "%", and different names give different segments.
func KeySegment(name string) string {
	if name == "" {
		return "~"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "~%02X", c)
		}
	}
	return b.String()
}

// TableLocation returns the location for a new table of the given Iceberg
// identifier under warehouse (a URL without a trailing slash):
// warehouse/<ns1>.<ns2>.db/<name>, each part decoded with NamePart and then
// encoded with KeySegment ("." inside namespace levels encoded too, so the
// levels cannot run together). For plain names this is iceberg-go's default
// layout; for any other name no level can escape or collide. Pass the result
// to iceberg-go's catalog.WithLocation when creating the table.
func TableLocation(warehouse string, ident []string) string {
	if len(ident) == 0 {
		return strings.TrimSuffix(warehouse, "/")
	}
	ns := make([]string, len(ident)-1)
	for i, level := range ident[:len(ident)-1] {
		ns[i] = strings.ReplaceAll(KeySegment(lakeformat.NamePart(level)), ".", "~2E")
	}
	return strings.TrimSuffix(warehouse, "/") + "/" + strings.Join(ns, ".") + ".db/" + KeySegment(lakeformat.NamePart(ident[len(ident)-1]))
}
