package pgarrow

import (
	"errors"
	"strings"
	"testing"
)

func TestArrays(t *testing.T) {
	tests := []struct {
		name string
		oid  uint32 // array type
		mod  int32
		in   string
		want string
	}{
		{"int empty", 1007, -1, `{}`, `[]`},
		{"int", 1007, -1, `{1,-2,3}`, `[1 -2 3]`},
		{"int nulls", 1007, -1, `{NULL,1,null,NuLl}`, `[NULL 1 NULL NULL]`},
		{"int 2d", 1007, -1, `{{1,2},{3,NULL}}`, `[1 2 3 NULL]`},
		{"int 3d", 1007, -1, `{{{1},{2}},{{3},{4}}}`, `[1 2 3 4]`},
		{"int bounds", 1007, -1, `[0:2]={7,8,9}`, `[7 8 9]`},
		{"int bounds 2d", 1007, -1, `[1:1][-1:0]={{7,8}}`, `[7 8]`},
		{"int spaces", 1007, -1, ` { 1 , 2 } `, `[1 2]`},
		{"int quoted", 1007, -1, `{"1"," 2"}`, "" /* " 2" is not an int */},
		{"text plain", 1009, -1, `{a,b c,NULL}`, `[a b c NULL]`},
		{"text quoted", 1009, -1, `{"a,b","c\"d","{e}","NULL","","back\\slash"," sp "}`, `[a,b c"d {e} NULL  back\slash  sp ]`},
		{"text unquoted escapes", 1009, -1, `{a\,b,c\\d,\N}`, `[a,b c\d N]`},
		{"text unicode", 1009, -1, `{"héllo wörld",日本}`, `[héllo wörld 日本]`},
		{"text 2d", 1009, -1, `{{"a b",c},{d,NULL}}`, `[a b c d NULL]`},
		{"box semicolon", 1020, -1, `{(1,1),(0,0);(3,3),(2,2)}`, `[(1,1),(0,0) (3,3),(2,2)]`},
		{"bytea", 1001, -1, `{"\\x00ff",NULL,"\\x"}`, `[00ff NULL ]`},
		{"numeric(10,3)", 1231, numericMod(10, 3), `{1.5,-2.125,NaN}`, `[1500 -2125 NULL]`},
		{"numeric", 1231, -1, `{1.5,NaN,Infinity}`, `[1.5 NaN Infinity]`},
		{"timestamptz", 1185, -1, `{"1970-01-01 00:00:00.000001+00",infinity}`, `[1 9223372036854775807]`},
		{"date", 1182, -1, `{1970-01-02,"0001-12-31 BC"}`, `[1 -719163]`},
		{"bool", 1000, -1, `{t,f,NULL}`, `[true false NULL]`},
		{"uuid", 2951, -1, `{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}`, `[a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11]`},
		{"jsonb", 3807, -1, `{"{\"a\": [1, 2]}",null}`, `[{"a": [1, 2]} NULL]`},
		{"interval", 1187, -1, `{"1 day","-00:00:01"}`, `[P1D PT-1S]`},
		{"float8", 1022, -1, `{NaN,-Infinity,1.5}`, `[NaN -Inf 1.5]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(t, mustColumn(t, tt.oid, tt.mod), tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("decode(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("decode(%q) = %q, want %q", tt.in, s, tt.want)
			}
		})
	}
}

func TestArrayErrors(t *testing.T) {
	tests := []string{
		``,
		`1,2`,
		`{`,
		`{1,2`,
		`{1,,2}`,
		`{,1}`,
		`{1,}`,
		`{1}x`,
		`{1}{2}`,
		`{{1},2}`,
		`{1,{2}}`,
		`{"a}`,
		`{a"b"}`,
		`{"a"b}`,
		`{a\`,
		`[1:2]{1,2}`,
		`[1:x]={1}`,
		`[1:2={1}`,
		`{1}}`,
		`}`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			for _, oid := range []uint32{1007, 1009} {
				if _, err := decode(t, mustColumn(t, oid, -1), in); !errors.Is(err, ErrSyntax) {
					t.Fatalf("decode(%d, %q) err = %v, want ErrSyntax", oid, in, err)
				}
			}
		})
	}
}
