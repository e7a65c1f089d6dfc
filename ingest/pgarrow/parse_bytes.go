package pgarrow

// decodeBytea appends the bytes of a bytea text value to dst. Both
// bytea_output formats are accepted: hex ("\x0aff", whitespace between
// digit pairs allowed) and escape (printable bytes as is, "\\" for a
// backslash, "\ooo" octal for the rest).
func decodeBytea(dst, b []byte) ([]byte, error) {
	if len(b) >= 2 && b[0] == '\\' && b[1] == 'x' {
		for i := 2; i < len(b); {
			c := b[i]
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				i++
				continue
			}
			if i+1 >= len(b) {
				return dst, ErrSyntax
			}
			hi, ok1 := unhex(c)
			lo, ok2 := unhex(b[i+1])
			if !ok1 || !ok2 {
				return dst, ErrSyntax
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		}
		return dst, nil
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\\':
			dst = append(dst, '\\')
			i += 2
		case i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) && b[i+1] <= '3':
			dst = append(dst, (b[i+1]-'0')<<6|(b[i+2]-'0')<<3|(b[i+3]-'0'))
			i += 4
		default:
			return dst, ErrSyntax
		}
	}
	return dst, nil
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isCanonicalUUID reports the form PostgreSQL prints: 8-4-4-4-12
// lowercase hex digits.
func isCanonicalUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// formatUUID appends the canonical form of any uuid spelling PostgreSQL
// accepts (upper case, braces, no or other hyphens between 4-digit
// groups) to dst.
func formatUUID(dst, b []byte) ([]byte, error) {
	if len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}' {
		b = b[1 : len(b)-1]
	}
	const hexdigits = "0123456789abcdef"
	n := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '-' && n > 0 && n%4 == 0 && i+1 < len(b) && b[i+1] != '-' {
			continue
		}
		v, ok := unhex(c)
		if !ok || n == 32 {
			return dst, ErrSyntax
		}
		switch n {
		case 8, 12, 16, 20:
			dst = append(dst, '-')
		}
		dst = append(dst, hexdigits[v])
		n++
	}
	if n != 32 {
		return dst, ErrSyntax
	}
	return dst, nil
}
