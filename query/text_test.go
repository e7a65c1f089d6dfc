package query

import (
	"math"
	"testing"
)

func TestIntervalText(t *testing.T) {
	tests := []struct {
		months, days int32
		nanos        int64
		want         string
	}{
		{0, 0, 0, "00:00:00"},
		{0, 1, 0, "1 day"},
		{14, 3, 0, "1 year 2 mons 3 days"},
		{0, 0, 3_723_500_000_000, "01:02:03.5"},
		{-1, -2, -60_000_000_000, "-1 mons -2 days -00:01:00"},
		{24, 0, 1000, "2 years 00:00:00.000001"},
	}
	for _, tc := range tests {
		if got := intervalText(tc.months, tc.days, tc.nanos); got != tc.want {
			t.Errorf("intervalText(%d, %d, %d) = %q, want %q", tc.months, tc.days, tc.nanos, got, tc.want)
		}
	}
}

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{1.5, "1.5"}, {0, "0"}, {-2, "-2"}, {1234567, "1234567"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
		{1e15, "1e+15"}, {123456789012345, "123456789012345"}, {math.NaN(), "NaN"}, {math.Inf(-1), "-Infinity"},
		{tenth() + 0.2, "0.30000000000000004"},
	}
	for _, tc := range tests {
		if got := formatFloat(tc.v, 64); got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func tenth() float64 { return 0.1 }
