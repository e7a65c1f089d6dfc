package pgarrow

import (
	"bytes"
	"math"
	"strconv"
)

// An interval is held by PostgreSQL as months, days and microseconds,
// and printed per IntervalStyle:
//
//	postgres          1 year 2 mons 3 days 04:05:06.5     -1 years -2 mons +3 days -04:05:06
//	postgres_verbose  @ 1 year 2 mons 3 days 4 hours 5 mins 6.5 secs [ago]
//	sql_standard      +1-2 +3 +4:05:06.5    1-2    3 4:05:06    -4:05:06
//	iso_8601          P1Y2M3DT4H5M6.5S      P-1Y-2M3DT-4H-5M-6S
//
// Any of them is parsed back to the three fields and printed the way
// iso_8601 prints them, so the output does not depend on the session.

type interval struct{ months, days, micros int64 }

// intervalISO appends the ISO 8601 form of an interval text to dst.
func intervalISO(dst, b []byte) ([]byte, error) {
	switch {
	case bytes.EqualFold(b, infinity):
		return append(dst, infinity...), nil // PostgreSQL 17+
	case bytes.EqualFold(b, negInfinity):
		return append(dst, negInfinity...), nil
	}
	iv, err := parseInterval(b)
	if err != nil {
		return dst, err
	}
	return iv.appendISO(dst), nil
}

func parseInterval(b []byte) (interval, error) {
	if len(b) > 0 && b[0] == 'P' {
		return parseISOInterval(b[1:])
	}
	return parseTextInterval(b)
}

// appendISO prints like PostgreSQL's EncodeInterval with INTSTYLE_ISO_8601.
func (iv interval) appendISO(dst []byte) []byte {
	year, mon, day := iv.months/12, iv.months%12, iv.days
	t := iv.micros
	usec := t % usPerSec
	t /= usPerSec
	sec := t % 60
	t /= 60
	min, hour := t%60, t/60
	if year == 0 && mon == 0 && day == 0 && hour == 0 && min == 0 && sec == 0 && usec == 0 {
		return append(dst, "PT0S"...)
	}
	dst = append(dst, 'P')
	dst = isoPart(dst, year, 'Y')
	dst = isoPart(dst, mon, 'M')
	dst = isoPart(dst, day, 'D')
	if hour != 0 || min != 0 || sec != 0 || usec != 0 {
		dst = append(dst, 'T')
	}
	dst = isoPart(dst, hour, 'H')
	dst = isoPart(dst, min, 'M')
	if sec != 0 || usec != 0 {
		if sec < 0 || usec < 0 {
			dst = append(dst, '-')
		}
		dst = strconv.AppendInt(dst, abs(sec), 10)
		dst = appendFraction(dst, abs(usec))
		dst = append(dst, 'S')
	}
	return dst
}

func isoPart(dst []byte, v int64, unit byte) []byte {
	if v == 0 {
		return dst
	}
	return append(strconv.AppendInt(dst, v, 10), unit)
}

// appendFraction appends ".ffffff" without trailing zeros, or nothing.
func appendFraction(dst []byte, usec int64) []byte {
	if usec == 0 {
		return dst
	}
	var d [7]byte
	d[0] = '.'
	for i := 6; i >= 1; i-- {
		d[i] = byte('0' + usec%10)
		usec /= 10
	}
	n := 7
	for d[n-1] == '0' {
		n--
	}
	return append(dst, d[:n]...)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// add returns iv with v*unit added to the field f (0 months, 1 days,
// 2 micros), reporting overflow.
func (iv *interval) add(f int, v, unit int64) bool {
	p := [3]*int64{&iv.months, &iv.days, &iv.micros}[f]
	if v > math.MaxInt64/unit || v < math.MinInt64/unit {
		return false
	}
	v *= unit
	s := *p + v
	if (v > 0 && s < *p) || (v < 0 && s > *p) {
		return false
	}
	*p = s
	return true
}

// number is a parsed decimal like -12.5: int part, fraction in
// microseconds, sign, and whether a sign was written.
type number struct {
	v, frac      int64
	neg, signed  bool
	hasFrac, bad bool
}

// scanNumber reads [+-]digits[.digits] at b[i:].
func scanNumber(b []byte, i int) (number, int) {
	var n number
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		n.neg, n.signed = b[i] == '-', true
		i++
	}
	start := i
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		if n.v > (math.MaxInt64-9)/10 {
			n.bad = true
			continue
		}
		n.v = n.v*10 + int64(b[i]-'0')
	}
	digits := i - start
	if i < len(b) && b[i] == '.' {
		n.hasFrac = true
		i++
		fs := i
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			if i-fs < 6 {
				n.frac = n.frac*10 + int64(b[i]-'0')
			} else if b[i] != '0' {
				n.bad = true // finer than a microsecond
			}
		}
		for k := i - fs; k < 6; k++ {
			n.frac *= 10
		}
		digits += i - fs
	}
	if digits == 0 {
		n.bad = true
	}
	return n, i
}

// micros returns the number times unit microseconds, signed.
func (n number) micros(unit int64, iv *interval) bool {
	v, f := n.v, n.frac*unit/usPerSec
	if n.neg {
		v, f = -v, -f
	}
	return iv.add(2, v, unit) && iv.add(2, f, 1)
}

func parseISOInterval(b []byte) (interval, error) {
	var iv interval
	inTime, any := false, false
	for i := 0; i < len(b); {
		if b[i] == 'T' {
			if inTime {
				return iv, ErrSyntax
			}
			inTime = true
			i++
			continue
		}
		n, j := scanNumber(b, i)
		if n.bad || j >= len(b) {
			return iv, ErrSyntax
		}
		unit := b[j]
		i = j + 1
		any = true
		if n.hasFrac && !(inTime && unit == 'S') {
			return iv, ErrSyntax
		}
		v := n.v
		if n.neg {
			v = -v
		}
		ok := true
		switch {
		case !inTime && unit == 'Y':
			ok = iv.add(0, v, 12)
		case !inTime && unit == 'M':
			ok = iv.add(0, v, 1)
		case !inTime && unit == 'W':
			ok = iv.add(1, v, 7)
		case !inTime && unit == 'D':
			ok = iv.add(1, v, 1)
		case inTime && unit == 'H':
			ok = iv.add(2, v, 60*usPerMin)
		case inTime && unit == 'M':
			ok = iv.add(2, v, usPerMin)
		case inTime && unit == 'S':
			ok = n.micros(usPerSec, &iv)
		default:
			return iv, ErrSyntax
		}
		if !ok {
			return iv, ErrRange
		}
	}
	if !any {
		return iv, ErrSyntax
	}
	return iv, nil
}

// parseTextInterval reads the postgres, postgres_verbose and
// sql_standard styles: space-separated tokens that are a number and a
// unit word, a time [+-]H:MM[:SS[.f]], a year-month [+-]Y-M, a bare day
// count, and "@"/"ago" in the verbose style. In sql_standard (no words
// at all) a leading '-' applies to every field without its own sign.
func parseTextInterval(b []byte) (interval, error) {
	var iv interval
	sqlStd := true
	for _, c := range b {
		if c|0x20 >= 'a' && c|0x20 <= 'z' {
			sqlStd = false
			break
		}
	}
	var (
		pending  number // a number waiting for its unit word
		havePend bool
		inherit  bool // sql_standard: unsigned fields are negative
		first    = true
		ago      bool
		tokens   int
	)
	flushDays := func() bool {
		if !havePend {
			return true
		}
		havePend = false
		if pending.hasFrac {
			return false
		}
		v := pending.v
		if pending.neg || (inherit && !pending.signed) {
			v = -v
		}
		return iv.add(1, v, 1)
	}
	for i := 0; i < len(b); {
		if b[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		tok := b[i:j]
		i = j
		tokens++
		isFirst := first
		first = false
		switch {
		case isFirst && len(tok) == 1 && tok[0] == '@':
			continue
		case bytes.Equal(tok, []byte("ago")):
			if havePend || i != len(b) {
				return iv, ErrSyntax
			}
			ago = true
			continue
		}
		if u, ok := unitOf(tok); ok {
			if !havePend {
				return iv, ErrSyntax
			}
			havePend = false
			if err := applyUnit(&iv, pending, u); err != nil {
				return iv, err
			}
			continue
		}
		if !flushDays() {
			return iv, ErrSyntax
		}
		neg := len(tok) > 0 && tok[0] == '-'
		signed := len(tok) > 0 && (tok[0] == '-' || tok[0] == '+')
		if isFirst && sqlStd && neg {
			inherit = true
		}
		if sqlStd && !signed && inherit {
			neg = true
		}
		switch {
		case bytes.IndexByte(tok, ':') >= 0:
			if err := parseClock(&iv, tok, neg); err != nil {
				return iv, err
			}
		case sqlStd && bytes.IndexByte(tok[1:], '-') >= 0:
			if err := parseYearMonth(&iv, tok, neg); err != nil {
				return iv, err
			}
		default:
			n, k := scanNumber(tok, 0)
			if n.bad || k != len(tok) {
				return iv, ErrSyntax
			}
			pending, havePend = n, true
		}
	}
	if !flushDays() {
		return iv, ErrSyntax
	}
	if tokens == 0 {
		return iv, ErrSyntax
	}
	if ago {
		iv = interval{-iv.months, -iv.days, -iv.micros}
	}
	return iv, nil
}

type unit uint8

const (
	uYear unit = iota
	uMonth
	uWeek
	uDay
	uHour
	uMinute
	uSecond
)

func unitOf(tok []byte) (unit, bool) {
	switch string(tok) {
	case "year", "years", "yr", "yrs":
		return uYear, true
	case "mon", "mons", "month", "months":
		return uMonth, true
	case "week", "weeks":
		return uWeek, true
	case "day", "days":
		return uDay, true
	case "hour", "hours", "hr", "hrs":
		return uHour, true
	case "min", "mins", "minute", "minutes":
		return uMinute, true
	case "sec", "secs", "second", "seconds":
		return uSecond, true
	}
	return 0, false
}

func applyUnit(iv *interval, n number, u unit) error {
	if n.hasFrac && u != uSecond {
		return ErrSyntax
	}
	v := n.v
	if n.neg {
		v = -v
	}
	var ok bool
	switch u {
	case uYear:
		ok = iv.add(0, v, 12)
	case uMonth:
		ok = iv.add(0, v, 1)
	case uWeek:
		ok = iv.add(1, v, 7)
	case uDay:
		ok = iv.add(1, v, 1)
	case uHour:
		ok = iv.add(2, v, 60*usPerMin)
	case uMinute:
		ok = iv.add(2, v, usPerMin)
	default:
		ok = n.micros(usPerSec, iv)
	}
	if !ok {
		return ErrRange
	}
	return nil
}

// parseClock reads [+-]H:MM[:SS[.ffffff]]; neg is the field's sign.
func parseClock(iv *interval, tok []byte, neg bool) error {
	i := 0
	if tok[0] == '+' || tok[0] == '-' {
		i = 1
	}
	h, i := scanNumber(tok, i)
	if h.bad || h.hasFrac || h.signed || i >= len(tok) || tok[i] != ':' {
		return ErrSyntax
	}
	m, ok := two(tok[i+1:])
	if !ok || m > 59 {
		return ErrSyntax
	}
	i += 3
	var s number
	if i < len(tok) {
		if tok[i] != ':' {
			return ErrSyntax
		}
		var j int
		s, j = scanNumber(tok, i+1)
		if s.bad || s.signed || j != len(tok) || j-(i+1) < 2 || s.v > 59 {
			return ErrSyntax
		}
	} else if i != len(tok) {
		return ErrSyntax
	}
	s.neg = neg
	hv, mv := h.v, int64(m)
	if neg {
		hv, mv = -hv, -mv
	}
	if !iv.add(2, hv, 60*usPerMin) || !iv.add(2, mv, usPerMin) || !s.micros(usPerSec, iv) {
		return ErrRange
	}
	return nil
}

// parseYearMonth reads sql_standard's [+-]Y-M.
func parseYearMonth(iv *interval, tok []byte, neg bool) error {
	i := 0
	if tok[0] == '+' || tok[0] == '-' {
		i = 1
	}
	y, i := scanNumber(tok, i)
	if y.bad || y.hasFrac || y.signed || i >= len(tok) || tok[i] != '-' {
		return ErrSyntax
	}
	m, j := scanNumber(tok, i+1)
	if m.bad || m.hasFrac || m.signed || j != len(tok) {
		return ErrSyntax
	}
	yv, mv := y.v, m.v
	if neg {
		yv, mv = -yv, -mv
	}
	if !iv.add(0, yv, 12) || !iv.add(0, mv, 1) {
		return ErrRange
	}
	return nil
}
