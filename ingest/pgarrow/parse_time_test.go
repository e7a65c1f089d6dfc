package pgarrow

import (
	"bufio"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goDays is an independent reference: Go's time package uses the same
// proleptic Gregorian calendar with astronomical years.
func goDays(y, m, d int) int64 {
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func goMicros(y, m, d, hh, mm, ss, us int, offSec int) int64 {
	t := time.Date(y, time.Month(m), d, hh, mm, ss, us*1000, time.FixedZone("", offSec))
	return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000)
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"1970-01-01", 0, nil},
		{"2000-01-01", goDays(2000, 1, 1), nil},
		{"2024-02-29", goDays(2024, 2, 29), nil},
		{"1969-12-31", -1, nil},
		{"0001-01-01", goDays(1, 1, 1), nil},
		{"0001-12-31 BC", goDays(0, 12, 31), nil},
		{"0044-03-15 BC", goDays(-43, 3, 15), nil},
		{"0005-02-29 BC", goDays(-4, 2, 29), nil}, // 5 BC is a leap year
		{"4714-11-24 BC", goDays(-4713, 11, 24), nil},
		{"5874897-12-31", goDays(5874897, 12, 31), nil},
		{"10000-01-01", goDays(10000, 1, 1), nil},
		{"infinity", math.MaxInt32, nil},
		{"-infinity", math.MinInt32, nil},
		{"", 0, ErrSyntax},
		{"2024-13-01", 0, ErrSyntax},
		{"2024-00-10", 0, ErrSyntax},
		{"2023-02-29", 0, ErrSyntax},
		{"2024-04-31", 0, ErrSyntax},
		{"0000-01-01", 0, ErrSyntax},
		{"2024-1-01", 0, ErrSyntax},
		{"2024-01-01 AD", 0, ErrSyntax},
		{"2024-01-01 BCE", 0, ErrSyntax},
		{"01/02/2024", 0, ErrSyntax},
		{"9999999999-01-01", 0, ErrSyntax},
		{"-2024-01-01", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDate([]byte(tt.in))
			if !errors.Is(err, tt.err) || (err == nil && int64(got) != tt.want) {
				t.Fatalf("parseDate(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"00:00:00", 0, nil},
		{"04:05:06", (4*3600 + 5*60 + 6) * 1e6, nil},
		{"04:05:06.5", (4*3600+5*60+6)*1e6 + 500000, nil},
		{"23:59:59.999999", 86400*1e6 - 1, nil},
		{"24:00:00", 86400 * 1e6, nil},
		{"24:00:00.000001", 0, ErrSyntax},
		{"25:00:00", 0, ErrSyntax},
		{"12:60:00", 0, ErrSyntax},
		{"12:00", 0, ErrSyntax},
		{"12:00:00.", 0, ErrSyntax},
		{"12:00:00.1234567", 0, ErrSyntax},
		{"12:00:00+01", 0, ErrSyntax},
		{"", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime([]byte(tt.in))
			if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
				t.Fatalf("parseTime(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in     string
		withTZ bool
		want   int64
		status tsStatus
		err    error
	}{
		{"1970-01-01 00:00:00", false, 0, finite, nil},
		{"2024-01-02 03:04:05.123456", false, goMicros(2024, 1, 2, 3, 4, 5, 123456, 0), finite, nil},
		{"2024-01-02T03:04:05.1", false, goMicros(2024, 1, 2, 3, 4, 5, 100000, 0), finite, nil},
		{"1969-12-31 23:59:59.999999", false, -1, finite, nil},
		{"0044-03-15 12:00:00 BC", false, goMicros(-43, 3, 15, 12, 0, 0, 0, 0), finite, nil},
		{"4713-11-24 00:00:00 BC", false, goMicros(-4712, 11, 24, 0, 0, 0, 0, 0), finite, nil},
		{"294247-01-10 04:00:54.775807", false, math.MaxInt64 - 0, outOfRange, nil}, // == MaxInt64: reserved for infinity
		{"294247-01-10 04:00:54.775806", false, math.MaxInt64 - 1, finite, nil},
		{"294276-12-31 23:59:59.999999", false, 0, outOfRange, nil},
		{"infinity", false, math.MaxInt64, finite, nil},
		{"-infinity", false, math.MinInt64, finite, nil},
		{"2024-01-02 03:04:05.123456+05:30", true, goMicros(2024, 1, 2, 3, 4, 5, 123456, 19800), finite, nil},
		{"2024-01-02 03:04:05+00", true, goMicros(2024, 1, 2, 3, 4, 5, 0, 0), finite, nil},
		{"2024-01-02 03:04:05-03:30", true, goMicros(2024, 1, 2, 3, 4, 5, 0, -12600), finite, nil},
		{"1880-06-01 17:53:28+05:53:28", true, goMicros(1880, 6, 1, 12, 0, 0, 0, 0), finite, nil},
		{"1880-06-01 08:29:08-03:30:52", true, goMicros(1880, 6, 1, 12, 0, 0, 0, 0), finite, nil},
		{"0044-03-15 12:34:56.789+05:53:28 BC", true, goMicros(-43, 3, 15, 12, 34, 56, 789000, 21208), finite, nil},
		{"2024-01-02 03:04:05Z", true, goMicros(2024, 1, 2, 3, 4, 5, 0, 0), finite, nil},
		{"infinity", true, math.MaxInt64, finite, nil},
		{"2024-01-02 03:04:05", true, 0, finite, ErrSyntax}, // offset missing
		{"2024-01-02 03:04:05+05:30", false, 0, finite, ErrSyntax},
		{"2024-01-02 03:04:05+5", true, 0, finite, ErrSyntax},
		{"2024-01-02 03:04:05+05:60", true, 0, finite, ErrSyntax},
		{"2024-01-02 24:00:00", false, 0, finite, ErrSyntax},
		{"2024-01-02", false, 0, finite, ErrSyntax},
		{"2024-01-02 03:04", false, 0, finite, ErrSyntax},
		{"2024-01-02 03:04:05 AD", false, 0, finite, ErrSyntax},
		{"Tue Jan 02 03:04:05 2024", false, 0, finite, ErrSyntax},
		{"01/02/2024 03:04:05", false, 0, finite, ErrSyntax},
		{"", true, 0, finite, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, st, err := parseTimestamp([]byte(tt.in), tt.withTZ)
			if !errors.Is(err, tt.err) || st != tt.status || (err == nil && st == finite && got != tt.want) {
				t.Fatalf("parseTimestamp(%q, %v) = %d, %d, %v; want %d, %d, %v",
					tt.in, tt.withTZ, got, st, err, tt.want, tt.status, tt.err)
			}
		})
	}
}

// TestTimestamptzGolden parses what PostgreSQL printed for a set of
// instants in several session time zones (testdata/timestamptz.golden,
// regenerated by TestPostgres with -update): every zone's text must
// give the instant PostgreSQL computed.
func TestTimestamptzGolden(t *testing.T) {
	f, err := os.Open("testdata/timestamptz.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		want, err := strconv.ParseInt(cols[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range cols[1:] {
			got, st, err := parseTimestamp([]byte(in), true)
			if err != nil || st != finite || got != want {
				t.Errorf("parseTimestamp(%q) = %d, %d, %v; want %d", in, got, st, err, want)
			}
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d golden instants", n)
	}
}
