package ingest

import (
	"strings"
	"testing"
)

func TestSplitCopyRow(t *testing.T) {
	cases := []struct {
		line string
		want []string // "<NULL>" for NULL
	}{
		{"1\tabc\t\\N", []string{"1", "abc", "<NULL>"}},
		{"a\\tb\tc\\\\d\te\\nf", []string{"a\tb", "c\\d", "e\nf"}},
		{"\\x41\\101\t", []string{"AA", ""}},
		{"\\\\N", []string{"\\N"}},
		{"", []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			fields, _, err := splitCopyRow([]byte(tc.line), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fields {
				if f == nil {
					got = append(got, "<NULL>")
				} else {
					got = append(got, string(f))
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, _, err := splitCopyRow([]byte("abc\\"), nil, nil); err == nil {
		t.Error("trailing backslash accepted")
	}
}
