package pgarrow

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodeBytea(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []byte
		err  error
	}{
		{"hex empty", `\x`, []byte{}, nil},
		{"hex", `\x00ff5c27`, []byte{0, 0xff, '\\', '\''}, nil},
		{"hex upper", `\xDEADbeef`, []byte{0xde, 0xad, 0xbe, 0xef}, nil},
		{"hex spaced", `\x de ad`, []byte{0xde, 0xad}, nil},
		{"hex odd", `\xabc`, nil, ErrSyntax},
		{"hex bad digit", `\xzz`, nil, ErrSyntax},
		{"escape empty", ``, []byte{}, nil},
		{"escape printable", `abc`, []byte("abc"), nil},
		{"escape octal", `\000\377\\'a`, []byte{0, 0xff, '\\', '\'', 'a'}, nil},
		{"escape octal too big", `\400`, nil, ErrSyntax},
		{"escape short", `\12`, nil, ErrSyntax},
		{"escape trailing backslash", `a\`, nil, ErrSyntax},
		{"escape bad", `\q`, nil, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeBytea(nil, []byte(tt.in))
			if !errors.Is(err, tt.err) || (err == nil && !bytes.Equal(got, tt.want)) {
				t.Fatalf("decodeBytea(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestUUID(t *testing.T) {
	const canon = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	tests := []struct {
		in    string
		canon bool
		err   error
	}{
		{canon, true, nil},
		{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", false, nil},
		{"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", false, nil},
		{"a0eebc999c0b4ef8bb6d6bb9bd380a11", false, nil},
		{"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", false, nil},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", false, ErrSyntax},
		{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", false, ErrSyntax},
		{"g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", false, ErrSyntax},
		{"a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", false, ErrSyntax},
		{"", false, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := isCanonicalUUID([]byte(tt.in)); got != tt.canon {
				t.Fatalf("isCanonicalUUID(%q) = %v", tt.in, got)
			}
			got, err := formatUUID(nil, []byte(tt.in))
			if !errors.Is(err, tt.err) || (err == nil && string(got) != canon) {
				t.Fatalf("formatUUID(%q) = %q, %v; want %q, %v", tt.in, got, err, canon, tt.err)
			}
		})
	}
}
