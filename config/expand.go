package config

import (
	"errors"
	"strings"
)

// A piece of a value as written: literal text, or a reference to an
// environment variable (${NAME}, or ${NAME:-default} when hasDef).
type piece struct {
	text   string // the literal text, or the reference's default
	name   string // the variable's name; empty for literal text
	hasDef bool
}

// splitRefs cuts s into literal text and ${NAME} or ${NAME:-default}
// references; $$ stands for a literal $. Its errors never quote s.
func splitRefs(s string) ([]piece, error) {
	var ps []piece
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i++
			continue
		}
		if i+1 == len(s) || s[i+1] != '{' {
			return nil, errors.New(`a "$" must start ${VAR} or be doubled as $$`)
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return nil, errors.New("unterminated ${ (write ${VAR} or ${VAR:-default})")
		}
		name, def, hasDef := strings.Cut(s[i+2:i+2+end], ":-")
		if !isVarName(name) {
			// the name is not shown: a mistyped ${PASSWORD=...} would show a secret
			return nil, errors.New("bad ${...} reference (write ${VAR} or ${VAR:-default}; a name is letters, digits and _)")
		}
		if lit.Len() > 0 {
			ps = append(ps, piece{text: lit.String()})
			lit.Reset()
		}
		ps = append(ps, piece{name: name, text: def, hasDef: hasDef})
		i += 2 + end
	}
	if lit.Len() > 0 {
		ps = append(ps, piece{text: lit.String()})
	}
	return ps, nil
}

func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// expand joins pieces, replacing references with the values getenv gives.
// A reference with a default takes the default when the variable is unset
// or empty. missing lists the unset variables that have no default.
func expand(ps []piece, getenv func(string) (string, bool)) (s string, missing []string) {
	var b strings.Builder
	for _, p := range ps {
		if p.name == "" {
			b.WriteString(p.text)
			continue
		}
		v, ok := getenv(p.name)
		switch {
		case p.hasDef && v == "":
			v = p.text
		case !ok:
			missing = append(missing, p.name)
		}
		b.WriteString(v)
	}
	return b.String(), missing
}

// literalPassword reports whether the value written as ps is a URL with a
// password (after "user:" in the user info, or a password= parameter) that
// is not made only of ${VAR} references without defaults: such a password
// is written in the file. The URL's structure (://, @, :, /, ?, &, =) is
// read from the literal text only, whatever the variables hold.
func literalPassword(ps []piece) bool {
	// b is the value with each reference as one 0 byte; env marks the
	// bytes of references without a default.
	var b []byte
	var env []bool
	for _, p := range ps {
		if p.name == "" {
			b = append(b, p.text...)
			env = append(env, make([]bool, len(p.text))...)
			continue
		}
		b = append(b, 0)
		env = append(env, !p.hasDef)
	}
	s := string(b)
	fromEnv := func(from, to int) bool {
		for i := from; i < to; i++ {
			if !env[i] {
				return false
			}
		}
		return true
	}
	start := strings.Index(s, "://")
	if start < 0 {
		return false
	}
	start += len("://")
	end := len(s)
	if i := strings.IndexAny(s[start:], "/?#"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
		user := s[start : start+at]
		if colon := strings.IndexByte(user, ':'); colon >= 0 && !fromEnv(start+colon+1, start+at) {
			return true
		}
	}
	q := strings.IndexByte(s[end:], '?')
	if q < 0 {
		return false
	}
	pos := end + q + 1
	query := s[pos:]
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query = query[:h]
	}
	for _, kv := range strings.Split(query, "&") {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "password") && !fromEnv(pos+len(k)+1, pos+len(kv)) {
			return true
		}
		pos += len(kv) + 1
	}
	return false
}
