package catalog

import (
	"fmt"
	"strings"
)

// PostgreSQL names (of sources, schemas, tables) may hold any character but
// NUL: "a/b", "../x", "%2e%2e", "été". Two encodings keep them safe:
//
//   - IdentPart turns a name into one level of an Iceberg identifier, which
//     iceberg-go refuses when it holds "/" or a control character or is "."
//     or "..". Only those characters and "%" are percent-encoded, so common
//     names stay as they are; NamePart reverses it.
//   - KeySegment turns a name into one object-key segment made only of
//     [A-Za-z0-9._~-], never starting with ".": no name can add a level to
//     a key or climb out of the lake. TableLocation builds a new table's
//     location from it.
//
// A changelog's identifier is {IdentPart(source), IdentPart(schema),
// IdentPart(table + "__changes")} (lakeformat.ChangelogIdent); readers cut
// the suffix before NamePart.

// IdentPart encodes a PostgreSQL name as one level of an Iceberg identifier:
// "%", "/" and control characters become %XX (upper-case hex), and the names
// "." and ".." become %2E and %2E%2E. Other names are returned unchanged.
func IdentPart(name string) string {
	switch name {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '%' || c == '/' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// NamePart decodes an identifier level written by IdentPart. Only the
// escapes IdentPart writes are decoded; any other "%" is taken literally,
// so identifiers written without IdentPart read back as themselves unless
// they happen to contain such an escape.
func NamePart(part string) string {
	switch part {
	case "%2E":
		return "."
	case "%2E%2E":
		return ".."
	}
	if !strings.Contains(part, "%") {
		return part
	}
	var b strings.Builder
	for i := 0; i < len(part); i++ {
		if part[i] == '%' && i+2 < len(part) {
			if c, ok := identEscape(part[i+1 : i+3]); ok {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(part[i])
	}
	return b.String()
}

// identEscape decodes the two hex digits of an escape IdentPart writes.
func identEscape(hex string) (byte, bool) {
	var c byte
	for i := 0; i < 2; i++ {
		h := hex[i]
		switch {
		case h >= '0' && h <= '9':
			c = c<<4 | (h - '0')
		case h >= 'A' && h <= 'F':
			c = c<<4 | (h - 'A' + 10)
		default:
			return 0, false
		}
	}
	if c == '%' || c == '/' || c < 0x20 || c == 0x7f {
		return c, true
	}
	return 0, false
}

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
		ns[i] = strings.ReplaceAll(KeySegment(NamePart(level)), ".", "~2E")
	}
	return strings.TrimSuffix(warehouse, "/") + "/" + strings.Join(ns, ".") + ".db/" + KeySegment(NamePart(ident[len(ident)-1]))
}
