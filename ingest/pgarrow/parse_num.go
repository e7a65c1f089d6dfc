package pgarrow

import (
	"bytes"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// parseInt parses an optionally signed decimal integer into int64.
func parseInt(b []byte) (int64, error) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	if i == len(b) {
		return 0, ErrSyntax
	}
	var u uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, ErrSyntax
		}
		if u > (1<<63)/10 {
			return 0, ErrRange
		}
		u = u*10 + uint64(d)
		if u > 1<<63 {
			return 0, ErrRange
		}
	}
	if neg {
		return -int64(u), nil // -(1<<63) wraps to MinInt64, as wanted
	}
	if u > 1<<63-1 {
		return 0, ErrRange
	}
	return int64(u), nil
}

// parseBool accepts PostgreSQL's output (t, f) and the spellings boolin
// accepts.
func parseBool(b []byte) (bool, error) {
	if len(b) == 1 {
		switch b[0] {
		case 't', 'T', 'y', 'Y', '1':
			return true, nil
		case 'f', 'F', 'n', 'N', '0':
			return false, nil
		}
		return false, ErrSyntax
	}
	switch {
	case bytes.EqualFold(b, []byte("true")), bytes.EqualFold(b, []byte("yes")), bytes.EqualFold(b, []byte("on")):
		return true, nil
	case bytes.EqualFold(b, []byte("false")), bytes.EqualFold(b, []byte("no")), bytes.EqualFold(b, []byte("off")):
		return false, nil
	}
	return false, ErrSyntax
}

// acc is an unsigned 128-bit accumulator of decimal digits.
type acc struct{ hi, lo uint64 }

func (a *acc) push(d uint64) {
	if a.hi == 0 && a.lo < 1e18 {
		a.lo = a.lo*10 + d
		return
	}
	h, l := bits.Mul64(a.lo, 10)
	var carry uint64
	a.lo, carry = bits.Add64(l, d, 0)
	a.hi = a.hi*10 + h + carry
}

func (a acc) num(neg bool) decimal128.Num {
	n := decimal128.New(int64(a.hi), a.lo)
	if neg {
		n = n.Negate()
	}
	return n
}

// parseDecimal parses numeric text into an unscaled decimal128 with the
// given scale, exactly (no float). special reports NaN or ±Infinity,
// which a decimal cannot hold. More integer digits than prec-scale, or
// non-zero fraction digits beyond scale, are ErrRange: the column's
// typmod and the value disagree.
func parseDecimal(b []byte, prec, scale int32) (n decimal128.Num, special bool, err error) {
	if len(b) == 0 {
		return n, false, ErrSyntax
	}
	if c := b[len(b)-1]; c == 'N' || c == 'y' || c == 'n' || c == 'Y' {
		switch {
		case bytes.EqualFold(b, []byte("NaN")),
			bytes.EqualFold(b, []byte("Infinity")),
			bytes.EqualFold(b, []byte("-Infinity")),
			bytes.EqualFold(b, []byte("+Infinity")):
			return n, true, nil
		}
		return n, false, ErrSyntax
	}
	i, neg := 0, false
	if b[0] == '-' || b[0] == '+' {
		neg, i = b[0] == '-', 1
	}
	var (
		a          acc
		intDigits  int32
		fracDigits int32
		seen       bool
	)
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		seen = true
		d := b[i] - '0'
		if intDigits == 0 && d == 0 {
			continue
		}
		intDigits++
		if intDigits > prec-scale {
			return n, false, ErrRange
		}
		a.push(uint64(d))
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i]-'0' <= 9; i++ {
			seen = true
			d := b[i] - '0'
			if fracDigits == scale {
				if d != 0 {
					return n, false, ErrRange
				}
				continue
			}
			fracDigits++
			a.push(uint64(d))
		}
	}
	if !seen || i != len(b) {
		return n, false, ErrSyntax
	}
	for ; fracDigits < scale; fracDigits++ {
		a.push(0)
	}
	return a.num(neg), false, nil
}

// parseMoney parses money as PostgreSQL prints it under lc_monetary:
// "$1,234.56", "-$1.00", "($1.00)", "1.234,56 €", "￥1,235". Currency
// symbols, spaces and grouping are skipped; the last '.' or ',' that is
// followed by one or two digits (and no more) is the decimal point;
// without one the amount is whole. The result has scale 2.
func parseMoney(b []byte) (decimal128.Num, error) {
	var (
		mag      uint64
		neg      bool
		digits   int
		pending  bool // a separator was seen after some digit
		afterSep = -1 // digits after the last separator that was followed by a digit
	)
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if pending {
				afterSep, pending = 0, false
			}
			if mag > (1<<63)/10 {
				return decimal128.Num{}, ErrRange
			}
			mag = mag*10 + uint64(c-'0')
			digits++
			if afterSep >= 0 {
				afterSep++
			}
		case c == '.' || c == ',':
			if digits > 0 {
				pending = true
			}
		case c == '-' || c == '(':
			neg = true
		}
	}
	if digits == 0 {
		return decimal128.Num{}, ErrSyntax
	}
	var f uint64 = 100
	switch afterSep {
	case 2:
		f = 1
	case 1:
		f = 10
	}
	if mag > (1<<63)/f {
		return decimal128.Num{}, ErrRange
	}
	mag *= f
	// money is an int64 count of cents
	if mag > 1<<63 || (!neg && mag == 1<<63) {
		return decimal128.Num{}, ErrRange
	}
	n := decimal128.FromU64(mag)
	if neg {
		n = n.Negate()
	}
	return n, nil
}
