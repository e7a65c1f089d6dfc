package ingest

import (
	"bytes"
	"errors"
)

// splitCopyRow splits one line of COPY text format (no trailing newline)
// into its fields, unescaping each; a nil field is NULL (\N). The returned
// slices point into buf, which is reused across calls.
func splitCopyRow(line []byte, fields [][]byte, buf []byte) ([][]byte, []byte, error) {
	fields, buf = fields[:0], buf[:0]
	for {
		end := bytes.IndexByte(line, '\t')
		raw := line
		if end >= 0 {
			raw = line[:end]
		}
		if len(raw) == 2 && raw[0] == '\\' && raw[1] == 'N' {
			fields = append(fields, nil)
		} else if bytes.IndexByte(raw, '\\') < 0 {
			fields = append(fields, raw)
		} else {
			start := len(buf)
			var err error
			if buf, err = unescapeCopy(buf, raw); err != nil {
				return nil, buf, err
			}
			fields = append(fields, buf[start:len(buf):len(buf)])
		}
		if end < 0 {
			return fields, buf, nil
		}
		line = line[end+1:]
	}
}

var errCopyEscape = errors.New("bad escape in COPY text")

// unescapeCopy appends the value of a COPY text field with backslash escapes.
func unescapeCopy(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, errCopyEscape
		}
		switch c = raw[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(raw) && isHex(raw[i+1]) {
				i++
				v = v*16 + hexVal(raw[i])
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, n := int(c-'0'), 1
			for n < 3 && i+1 < len(raw) && raw[i+1] >= '0' && raw[i+1] <= '7' {
				i++
				v = v*8 + int(raw[i]-'0')
				n++
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}
