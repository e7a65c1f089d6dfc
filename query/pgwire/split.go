package pgwire

import "strings"

// splitStatements splits a simple-query message into its statements, as
// PostgreSQL's lexer does: at semicolons outside string literals ('...',
// E'...' with backslash escapes), quoted identifiers, dollar quotes
// ($$...$$, $tag$...$tag$) and comments (-- to the end of the line,
// nested /* */). Each statement keeps its text without the semicolon;
// statements of only blanks and comments are left out.
func splitStatements(sql string) []string {
	var out []string
	start := 0
	blank := true // nothing but blanks and comments since start
	end := func(i int) {
		if !blank {
			out = append(out, strings.TrimSpace(sql[start:i]))
		}
		start, blank = i+1, true
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == ';':
			end(i)
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			continue
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(sql)
			}
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			i = blockCommentEnd(sql, i) - 1
			continue
		}
		blank = false
		switch {
		case c == '\'':
			escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i < 2 || !identChar(sql[i-2]))
			i = quotedEnd(sql, i, '\'', escapes) - 1
		case c == '"':
			i = quotedEnd(sql, i, '"', false) - 1
		case c == '$' && (i == 0 || !identChar(sql[i-1])):
			if tag, ok := dollarTag(sql[i:]); ok {
				if j := strings.Index(sql[i+len(tag):], tag); j >= 0 {
					i += len(tag) + j + len(tag) - 1
				} else {
					i = len(sql)
				}
			}
		}
	}
	end(len(sql))
	return out
}

// identChar reports whether c may continue an identifier (so a following
// quote or $ belongs to it).
func identChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// quotedEnd returns the index just past the literal or identifier that
// opens at i with quote q (a doubled quote stands for itself; with
// escapes, a backslash escapes the next byte), or len(s) if unclosed.
func quotedEnd(s string, i int, q byte, escapes bool) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if escapes {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// blockCommentEnd returns the index just past the (nested) block comment
// that opens at i, or len(s) if unclosed.
func blockCommentEnd(s string, i int) int {
	depth := 0
	for j := i; j < len(s)-1; j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j++
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// dollarTag returns the opening $tag$ at the start of s, if s starts a
// dollar-quoted string (a parameter such as $1 does not).
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		case c >= '0' && c <= '9' && j > 1:
		default:
			return "", false
		}
	}
	return "", false
}
