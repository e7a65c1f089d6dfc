package pgarrow

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// Array literals as array_out prints them:
//
//	{1,2,NULL}   {"a,b","c\"d",NULL,"NULL",""}   {{1,2},{3,4}}   [0:1]={5,6}   {}
//
// Elements are separated by the element type's delimiter (',' for all
// but box, which uses ';'); an element is quoted when it is empty, is
// NULL spelled as text, or holds the delimiter, braces, quotes,
// backslashes or white space; inside quotes (and outside) a backslash
// escapes the next byte. An unquoted NULL (any case) is a null element.
// Multi-dimensional arrays are flattened in row-major order (the
// column type cannot say how many dimensions a value has: int[] and
// int[][] are the same type), and explicit lower bounds are dropped.

// appendArray parses one array literal and appends it as one list.
func (c *Column) appendArray(lb *array.ListBuilder, text []byte) error {
	p, err := skipDims(text)
	if err != nil {
		return c.valueErr(text, err)
	}
	lb.Append(true)
	if err := c.walkArray(p, lb.ValueBuilder()); err != nil {
		return c.valueErr(text, err)
	}
	return nil
}

// skipDims drops a leading dimension decoration such as "[1:3][0:1]=".
func skipDims(p []byte) ([]byte, error) {
	i := 0
	for i < len(p) && p[i] == ' ' {
		i++
	}
	if i == len(p) || p[i] != '[' {
		return p[i:], nil
	}
	for i < len(p) && p[i] == '[' {
		i++
		for i < len(p) && p[i] != ']' {
			if c := p[i]; c != ':' && c != '-' && c != '+' && (c < '0' || c > '9') {
				return nil, ErrSyntax
			}
			i++
		}
		if i == len(p) {
			return nil, ErrSyntax
		}
		i++
	}
	if i == len(p) || p[i] != '=' {
		return nil, ErrSyntax
	}
	return p[i+1:], nil
}

func isArraySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// walkArray appends the elements of "{...}" (nested or not) to vb.
func (c *Column) walkArray(p []byte, vb array.Builder) error {
	var sc *scratch // for unescaped elements, taken on first use
	defer func() {
		if sc != nil {
			putScratch(sc)
		}
	}()
	const (
		start = iota // before the outer '{'
		item         // after '{' or a delimiter
		after        // after an element or '}'
		done         // after the outer '}'
	)
	var (
		state     = start
		depth     = 0
		leaf      = -1 // depth at which elements sit; -1 until the first one
		justOpen  bool
		delim     = c.delim
		nElements int
	)
	for i := 0; i < len(p); {
		ch := p[i]
		if isArraySpace(ch) {
			i++
			continue
		}
		switch state {
		case start:
			if ch != '{' {
				return ErrSyntax
			}
			depth, state, justOpen = 1, item, true
			i++
		case item:
			switch {
			case ch == '{':
				if leaf >= 0 && depth >= leaf {
					return fmt.Errorf("%w: sub-array where elements were", ErrSyntax)
				}
				depth++
				justOpen = true
				i++
			case ch == '}' && justOpen:
				depth--
				i++
				state, justOpen = after, false
				if depth == 0 {
					state = done
				}
			case ch == '}' || ch == delim:
				return ErrSyntax
			default:
				if leaf < 0 {
					leaf = depth
				} else if leaf != depth {
					return fmt.Errorf("%w: element where sub-arrays were", ErrSyntax)
				}
				elem, next, err := c.scanElement(p, i, &sc)
				if err != nil {
					return err
				}
				if err := c.elem.Append(vb, elem); err != nil {
					return fmt.Errorf("element %d: %w", nElements+1, err)
				}
				nElements++
				i, state, justOpen = next, after, false
			}
		case after:
			switch ch {
			case delim:
				state = item
			case '}':
				depth--
				if depth == 0 {
					state = done
				}
			default:
				return ErrSyntax
			}
			i++
		case done:
			return fmt.Errorf("%w: text after the array", ErrSyntax)
		}
	}
	if state != done {
		return fmt.Errorf("%w: unterminated array", ErrSyntax)
	}
	return nil
}

// scanElement reads the element at p[i:] and returns its text with
// quotes and escapes removed (nil for NULL) and the position after it.
// The text aliases p when there is nothing to unescape, else *sc.
func (c *Column) scanElement(p []byte, i int, sc **scratch) ([]byte, int, error) {
	if p[i] == '"' {
		i++
		start, esc := i, false
		for ; i < len(p) && p[i] != '"'; i++ {
			if p[i] == '\\' {
				esc = true
				i++
			}
		}
		if i >= len(p) {
			return nil, 0, fmt.Errorf("%w: unterminated quoted element", ErrSyntax)
		}
		if !esc {
			return p[start:i:i], i + 1, nil
		}
		return unescape(p[start:i], sc), i + 1, nil
	}
	start, end, esc := i, i, false
	for ; i < len(p); i++ {
		ch := p[i]
		if ch == c.delim || ch == '}' || ch == '{' || ch == '"' {
			break
		}
		if ch == '\\' {
			esc = true
			i++
			if i == len(p) {
				return nil, 0, ErrSyntax
			}
			end = i + 1
			continue
		}
		if !isArraySpace(ch) {
			end = i + 1
		}
	}
	if i < len(p) && (p[i] == '{' || p[i] == '"') {
		return nil, 0, fmt.Errorf("%w: unexpected %q in element", ErrSyntax, p[i])
	}
	raw := p[start:end:end]
	if !esc {
		if len(raw) == 4 && (raw[0]|0x20) == 'n' && (raw[1]|0x20) == 'u' && (raw[2]|0x20) == 'l' && (raw[3]|0x20) == 'l' {
			return nil, i, nil
		}
		return raw, i, nil
	}
	return unescape(raw, sc), i, nil
}

// unescape copies b without its backslashes to a scratch buffer.
func unescape(b []byte, sc **scratch) []byte {
	if *sc == nil {
		*sc = getScratch()
	}
	out := (*sc).b[:0]
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		out = append(out, b[i])
	}
	(*sc).b = out
	if out == nil {
		out = []byte{}
	}
	return out
}
