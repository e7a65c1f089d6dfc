package lakeformat

import (
	"fmt"
	"strings"
)

// PostgreSQL names (of sources, schemas, tables) may hold any character but
// NUL: "a/b", "../x", "%2e%2e", "été". IdentPart turns a name into one level
// of an Iceberg identifier, which iceberg-go refuses when it holds "/" or a
// control character or is "." or "..". Only those characters and "%" are
// percent-encoded, so common names stay as they are; NamePart reverses it.
// A changelog's identifier is {IdentPart(source), IdentPart(schema),
// IdentPart(table + "__changes")} (ChangelogIdent); readers cut the suffix
// before NamePart.

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
