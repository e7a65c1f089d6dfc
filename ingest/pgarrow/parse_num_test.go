package pgarrow

import (
	"errors"
	"math"
	"testing"
)

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"0", 0, nil},
		{"42", 42, nil},
		{"-42", -42, nil},
		{"+7", 7, nil},
		{"9223372036854775807", math.MaxInt64, nil},
		{"-9223372036854775808", math.MinInt64, nil},
		{"9223372036854775808", 0, ErrRange},
		{"-9223372036854775809", 0, ErrRange},
		{"99999999999999999999999", 0, ErrRange},
		{"", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{"1.5", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
		{"1e3", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseInt([]byte(tt.in))
			if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
				t.Fatalf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		err  error
	}{
		{"t", true, nil}, {"f", false, nil}, {"true", true, nil}, {"FALSE", false, nil},
		{"yes", true, nil}, {"off", false, nil}, {"", false, ErrSyntax}, {"x", false, ErrSyntax},
		{"tru", false, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBool([]byte(tt.in))
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("parseBool(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in          string
		prec, scale int32
		want        string // unscaled integer
		special     bool
		err         error
	}{
		{"123.45", 12, 2, "12345", false, nil},
		{"-123.45", 12, 2, "-12345", false, nil},
		{"+0.05", 12, 2, "5", false, nil},
		{"0.00", 12, 2, "0", false, nil},
		{"7", 12, 2, "700", false, nil},
		{"7.5", 12, 2, "750", false, nil},
		{".5", 12, 2, "50", false, nil},
		{"5.", 12, 2, "500", false, nil},
		{"0000123.40", 5, 2, "12340", false, nil},
		{"1.230", 12, 2, "123", false, nil}, // trailing zero beyond scale
		{"9999999999.99", 12, 2, "999999999999", false, nil},
		{"10000000000.00", 12, 2, "", false, ErrRange},
		{"1.234", 12, 2, "", false, ErrRange},
		{"99999999999999999999999999999999999999", 38, 0, "99999999999999999999999999999999999999", false, nil},
		{"-99999999999999999999999999999999999999", 38, 0, "-99999999999999999999999999999999999999", false, nil},
		{"123456789012345678901234567.12345678901", 38, 11, "12345678901234567890123456712345678901", false, nil},
		{"0.00000000000000000000000000000000000001", 38, 38, "1", false, nil},
		{"12300", 5, 0, "12300", false, nil}, // numeric(3,-2)
		{"0.00123", 5, 5, "123", false, nil}, // numeric(3,5)
		{"NaN", 12, 2, "", true, nil},
		{"Infinity", 12, 2, "", true, nil},
		{"-Infinity", 12, 2, "", true, nil},
		{"", 12, 2, "", false, ErrSyntax},
		{"-", 12, 2, "", false, ErrSyntax},
		{".", 12, 2, "", false, ErrSyntax},
		{"1e5", 12, 2, "", false, ErrSyntax},
		{"1.2.3", 12, 2, "", false, ErrSyntax},
		{"12a", 12, 2, "", false, ErrSyntax},
		{"Nan!", 12, 2, "", false, ErrSyntax},
		{"nonsenseN", 12, 2, "", false, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, special, err := parseDecimal([]byte(tt.in), tt.prec, tt.scale)
			if !errors.Is(err, tt.err) || special != tt.special {
				t.Fatalf("parseDecimal(%q) special=%v err=%v; want special=%v err=%v", tt.in, special, err, tt.special, tt.err)
			}
			if err == nil && !special {
				if got := n.BigInt().String(); got != tt.want {
					t.Fatalf("parseDecimal(%q) = %s, want %s", tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in   string
		want string // cents
		err  error
	}{
		{"$1,234.56", "123456", nil},
		{"-$1,234.56", "-123456", nil},
		{"$0.00", "0", nil},
		{"($5.25)", "-525", nil},
		{"$92,233,720,368,547,758.07", "9223372036854775807", nil},
		{"-$92,233,720,368,547,758.08", "-9223372036854775808", nil},
		{"$92,233,720,368,547,758.08", "", ErrRange},
		{"1.234,56 €", "123456", nil},
		{"-1.234,56 €", "-123456", nil},
		{"1 234,56 kr.", "123456", nil},
		{"Fr. 1'234.56", "123456", nil},
		{"￥1,235", "123500", nil},
		{"1234", "123400", nil},
		{"12.5", "1250", nil},
		{"", "", ErrSyntax},
		{"$", "", ErrSyntax},
		{"99999999999999999999", "", ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := parseMoney([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("parseMoney(%q) err = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil {
				if got := n.BigInt().String(); got != tt.want {
					t.Fatalf("parseMoney(%q) = %s, want %s", tt.in, got, tt.want)
				}
			}
		})
	}
}
