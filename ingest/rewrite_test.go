package ingest

import "testing"

func TestKeepsValues(t *testing.T) {
	for _, tt := range []struct {
		from, to string
		want     bool
	}{
		{"integer", "bigint", true},
		{"smallint", "integer", true},
		{"real", "double precision", true},
		{"character varying(10)", "character varying(20)", true},
		{"character varying(10)", "text", true},
		{"text", "character varying", true},
		{"numeric(10,2)", "numeric(12,2)", true},
		{"integer", "text", false},
		{"bigint", "integer", false},
		{"character varying(20)", "character varying(10)", false},
		{"text", "character(12)", false},
		{"numeric(10,2)", "numeric(10,1)", false},
		{"numeric(10,2)", "numeric(12,3)", false},
		{"timestamp without time zone", "timestamp(0) without time zone", false},
		{"double precision", "real", false},
	} {
		if got := keepsValues(tt.from, tt.to); got != tt.want {
			t.Errorf("keepsValues(%q, %q) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}
