package pgarrow

import (
	"bytes"
	"math"
)

// Dates and timestamps in PostgreSQL's ISO DateStyle:
//
//	date         2024-01-02, 0044-03-15 BC, 10000-01-01, infinity, -infinity
//	timestamp    2024-01-02 03:04:05.123456 [BC]
//	timestamptz  2024-01-02 03:04:05.123456+05:30 [BC]  (offset ±HH[:MM[:SS]])
//	time         03:04:05.123456, 24:00:00
//
// The calendar is the proleptic Gregorian one PostgreSQL uses; year N BC
// is astronomical year 1-N.

const (
	usPerSec = 1_000_000
	usPerMin = 60 * usPerSec
	usPerDay = 86_400 * usPerSec
)

// tsStatus tells a representable timestamp from one beyond int64
// microseconds since 1970 (PostgreSQL goes up to year 294276).
type tsStatus uint8

const (
	finite tsStatus = iota
	outOfRange
)

var (
	infinity    = []byte("infinity")
	negInfinity = []byte("-infinity")
)

// parseDate returns days since 1970-01-01; infinity and -infinity map
// to MaxInt32 and MinInt32, which no finite date reaches.
func parseDate(b []byte) (int32, error) {
	if len(b) > 0 && (b[0] == 'i' || b[0] == 'I' || b[0] == '-') {
		switch {
		case bytes.EqualFold(b, infinity):
			return math.MaxInt32, nil
		case bytes.EqualFold(b, negInfinity):
			return math.MinInt32, nil
		}
	}
	y, m, d, i, err := parseYMD(b)
	if err != nil {
		return 0, err
	}
	y, err = era(b[i:], y)
	if err != nil {
		return 0, err
	}
	if d > daysIn(y, m) {
		return 0, ErrSyntax
	}
	days := daysFromCivil(y, m, d)
	if days >= math.MaxInt32 || days <= math.MinInt32 {
		return 0, ErrRange
	}
	return int32(days), nil
}

// parseTime returns microseconds since midnight; 24:00:00 is allowed.
func parseTime(b []byte) (int64, error) {
	us, i, err := parseHMS(b, 0, 24)
	if err != nil {
		return 0, err
	}
	if i != len(b) || us > 24*60*usPerMin {
		return 0, ErrSyntax
	}
	return us, nil
}

// parseTimestamp returns microseconds since 1970-01-01 00:00:00 (UTC
// when withTZ, converting from the printed offset). infinity and
// -infinity map to MaxInt64 and MinInt64.
func parseTimestamp(b []byte, withTZ bool) (int64, tsStatus, error) {
	if len(b) > 0 && (b[0] == 'i' || b[0] == 'I' || b[0] == '-') {
		switch {
		case bytes.EqualFold(b, infinity):
			return math.MaxInt64, finite, nil
		case bytes.EqualFold(b, negInfinity):
			return math.MinInt64, finite, nil
		}
	}
	y, m, d, i, err := parseYMD(b)
	if err != nil {
		return 0, finite, err
	}
	if i >= len(b) || (b[i] != ' ' && b[i] != 'T') {
		return 0, finite, ErrSyntax
	}
	tod, i, err := parseHMS(b, i+1, 23)
	if err != nil {
		return 0, finite, err
	}
	var off int64 // offset east of UTC, in microseconds
	if withTZ {
		off, i, err = parseOffset(b, i)
		if err != nil {
			return 0, finite, err
		}
	}
	y, err = era(b[i:], y)
	if err != nil {
		return 0, finite, err
	}
	if d > daysIn(y, m) {
		return 0, finite, ErrSyntax
	}
	days := daysFromCivil(y, m, d)
	if days > math.MaxInt64/usPerDay || days < math.MinInt64/usPerDay {
		return 0, outOfRange, nil
	}
	v := days * usPerDay
	delta := tod - off
	r := v + delta
	if (delta > 0 && r < v) || (delta < 0 && r > v) || r == math.MaxInt64 || r == math.MinInt64 {
		return 0, outOfRange, nil
	}
	return r, finite, nil
}

// parseYMD reads Y+-MM-DD and returns the position after it.
func parseYMD(b []byte) (y int64, m, d, i int, err error) {
	for i < len(b) && b[i]-'0' <= 9 {
		if i == 9 {
			return 0, 0, 0, 0, ErrSyntax
		}
		y = y*10 + int64(b[i]-'0')
		i++
	}
	if i == 0 || y == 0 || i+6 > len(b) || b[i] != '-' || b[i+3] != '-' {
		return 0, 0, 0, 0, ErrSyntax
	}
	m, ok1 := two(b[i+1:])
	d, ok2 := two(b[i+4:])
	if !ok1 || !ok2 || m < 1 || m > 12 || d < 1 {
		return 0, 0, 0, 0, ErrSyntax
	}
	return y, m, d, i + 6, nil
}

// parseHMS reads HH:MM:SS[.ffffff] at b[i:] and returns microseconds
// and the position after it.
func parseHMS(b []byte, i, maxHour int) (int64, int, error) {
	if i+8 > len(b) || b[i+2] != ':' || b[i+5] != ':' {
		return 0, 0, ErrSyntax
	}
	h, ok1 := two(b[i:])
	mi, ok2 := two(b[i+3:])
	s, ok3 := two(b[i+6:])
	if !ok1 || !ok2 || !ok3 || h > maxHour || mi > 59 || s > 59 {
		return 0, 0, ErrSyntax
	}
	us := int64(h)*60*usPerMin + int64(mi)*usPerMin + int64(s)*usPerSec
	i += 8
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		var f int64
		for i < len(b) && b[i]-'0' <= 9 {
			if i-start == 6 {
				return 0, 0, ErrSyntax
			}
			f = f*10 + int64(b[i]-'0')
			i++
		}
		if i == start {
			return 0, 0, ErrSyntax
		}
		for n := i - start; n < 6; n++ {
			f *= 10
		}
		us += f
	}
	return us, i, nil
}

// parseOffset reads +HH[:MM[:SS]], -HH[...] or Z at b[i:].
func parseOffset(b []byte, i int) (int64, int, error) {
	if i < len(b) && b[i] == 'Z' {
		return 0, i + 1, nil
	}
	if i+3 > len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, 0, ErrSyntax
	}
	neg := b[i] == '-'
	h, ok := two(b[i+1:])
	if !ok {
		return 0, 0, ErrSyntax
	}
	sec := int64(h) * 3600
	i += 3
	for _, mul := range [2]int64{60, 1} {
		if i >= len(b) || b[i] != ':' {
			break
		}
		v, ok := two(b[i+1:])
		if !ok || v > 59 {
			return 0, 0, ErrSyntax
		}
		sec += int64(v) * mul
		i += 3
	}
	if neg {
		sec = -sec
	}
	return sec * usPerSec, i, nil
}

// era applies an optional " BC" suffix (the only text allowed after the
// value) to year y, returning the astronomical year.
func era(rest []byte, y int64) (int64, error) {
	switch {
	case len(rest) == 0:
		return y, nil
	case len(rest) == 3 && rest[0] == ' ' && (rest[1]|0x20) == 'b' && (rest[2]|0x20) == 'c':
		return 1 - y, nil
	}
	return 0, ErrSyntax
}

// two parses exactly two decimal digits.
func two(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	d1, d2 := b[0]-'0', b[1]-'0'
	if d1 > 9 || d2 > 9 {
		return 0, false
	}
	return int(d1)*10 + int(d2), true
}

func daysIn(y int64, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns days since 1970-01-01 of a proleptic Gregorian
// date (astronomical year), after H. Hinnant's algorithm.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
