package torture

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Column is a source column as the catalog describes it.
type Column struct {
	Name    string
	Type    string // format_type(atttypid, atttypmod)
	Key     bool   // part of the primary key
	NotNull bool
}

// lit quotes s as an SQL string literal (standard_conforming_strings on).
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ident quotes a name as an SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// edge values per type family, as SQL literals of that type (without cast).
var edges = map[string][]string{
	"smallint":         {"-32768", "32767", "0", "-1"},
	"integer":          {"-2147483648", "2147483647", "0", "1"},
	"bigint":           {"-9223372036854775808", "9223372036854775807", "0", "42"},
	"real":             {"'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "3.4028235e38", "1.17549435e-38", "1.5"},
	"double precision": {"'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "1.7976931348623157e308", "5e-324", "0.1"},
	"numeric(12,3)":    {"999999999.999", "-999999999.999", "0.001", "0", "'NaN'"},
	"numeric(10,2)":    {"99999999.99", "-0.01", "0"},
	"numeric(14,3)":    {"99999999999.999", "-0.001"},
	"numeric": {"'NaN'", "'Infinity'", "'-Infinity'", "0.000000000000000000000000000000000000000001",
		"123456789012345678901234567890123456789012345.6789", "-1"},
	"boolean":                     {"true", "false"},
	"text":                        {"''", "' '", "'a b'", `'quote''s \back\slash'`, "'ünïcødé ✓'", "'NULL'", "'tab\there'"},
	"character varying(20)":       {"''", "'x'", "'twenty chars exactly'"},
	"character varying(10)":       {"''", "'ten chars!'"},
	"character(4)":                {"'ab'", "''", "'abcd'"},
	"bytea":                       {`'\x'`, `'\x00ff10'`, `'\xdeadbeef'`},
	"uuid":                        {"'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"},
	"jsonb":                       {`'{}'`, `'[]'`, `'"x"'`, `'null'`, `'{"a": 1, "b": [1, 2.5, "c"], "d": {"e": null}}'`},
	"date":                        {"'infinity'", "'-infinity'", "'4713-01-01 BC'", "'0001-01-01'", "'9999-12-31'", "'2024-02-29'", "'0044-03-15 BC'"},
	"timestamp without time zone": {"'infinity'", "'-infinity'", "'4713-01-01 00:00:00 BC'", "'1970-01-01 00:00:00'", "'2000-02-29 23:59:59.999999'", "'1900-06-01 12:34:56.5'", "'10000-01-01 00:00:00'"},
	"timestamp with time zone":    {"'infinity'", "'-infinity'", "'2024-01-02 08:34:05.123456+05:30'", "'1847-12-01 05:53:28+00'", "'1970-01-01 00:00:00+00'", "'0044-03-15 09:04:04.789-03:30 BC'"},
	"time without time zone":      {"'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:00:00.5'"},
	"interval":                    {"'0'", "'-1 days'", "'1 year 2 mons 3 days 04:05:06.789'", "'-178000000 years'", "'1 microsecond'"},
	"integer[]":                   {"'{}'", "'{1,2,NULL}'", "'{-2147483648,2147483647}'"},
	"text[]":                      {"'{}'", `'{"a b","",NULL,"x\"y","NULL"}'`, "'{plain}'"},
	"inet":                        {"'192.168.0.1/24'", "'::1'", "'10.0.0.1'"},
	"time with time zone":         {"'04:05:06.789-08'", "'00:00:00+00'"},
	"character varying":           {"''", "'v'"},
}

// SQLValue returns a random value of type typ as an SQL expression, NULL in
// about one case in ten (never for a key column).
func SQLValue(r *rand.Rand, typ string, key bool) string {
	if !key && r.IntN(10) == 0 {
		return "NULL"
	}
	if e := edges[typ]; len(e) > 0 && r.IntN(3) == 0 && !key {
		return "(" + e[r.IntN(len(e))] + ")::" + typ
	}
	return "(" + randomValue(r, typ) + ")::" + typ
}

func randomValue(r *rand.Rand, typ string) string {
	switch typ {
	case "smallint":
		return fmt.Sprint(r.IntN(65536) - 32768)
	case "integer":
		return fmt.Sprint(r.Int32() - r.Int32())
	case "bigint":
		return fmt.Sprint(r.Int64() - r.Int64())
	case "real", "double precision":
		return fmt.Sprintf("'%g'", (r.Float64()-0.5)*float64(int64(1)<<r.IntN(60)))
	case "numeric(12,3)":
		return fmt.Sprintf("%d.%03d", r.IntN(2_000_000_000)-1_000_000_000, r.IntN(1000))
	case "numeric(10,2)":
		return fmt.Sprintf("%d.%02d", r.IntN(200_000_000)-100_000_000, r.IntN(100))
	case "numeric(14,3)":
		return fmt.Sprintf("%d.%03d", r.Int64N(200_000_000_000)-100_000_000_000, r.IntN(1000))
	case "numeric":
		return fmt.Sprintf("%d.%d", r.Int64()-r.Int64(), r.Int64())
	case "boolean":
		return fmt.Sprint(r.IntN(2) == 0)
	case "text", "character varying", "character varying(20)", "character varying(10)", "character(4)":
		n := map[string]int{"character(4)": 4, "character varying(10)": 10}[typ]
		if n == 0 {
			n = 20
		}
		return lit(word(r, 1+r.IntN(n)))
	case "bytea":
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return lit(fmt.Sprintf(`\x%x`, b))
	case "uuid":
		return lit(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Int64N(1<<48)))
	case "jsonb":
		return lit(fmt.Sprintf(`{"k": %d, "s": "%s", "l": [%d, null, true]}`, r.IntN(1000), word(r, 5), r.IntN(9)))
	case "date":
		return lit(fmt.Sprintf("%04d-%02d-%02d", 1+r.IntN(9999), 1+r.IntN(12), 1+r.IntN(28)))
	case "timestamp without time zone":
		return lit(fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", 1+r.IntN(9999), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1_000_000)))
	case "timestamp with time zone":
		return lit(fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d%+03d:%02d", 1900+r.IntN(300), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1_000_000), r.IntN(27)-13, 30*r.IntN(2)))
	case "time without time zone":
		return lit(fmt.Sprintf("%02d:%02d:%02d.%06d", r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1_000_000)))
	case "time with time zone":
		return lit(fmt.Sprintf("%02d:%02d:%02d%+03d", r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(25)-12))
	case "interval":
		return lit(fmt.Sprintf("%d years %d mons %d days %d:%02d:%02d.%06d", r.IntN(200)-100, r.IntN(12), r.IntN(60)-30, r.IntN(100), r.IntN(60), r.IntN(60), r.IntN(1_000_000)))
	case "integer[]":
		n := r.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprint(r.Int32() - r.Int32())
		}
		return lit("{" + strings.Join(parts, ",") + "}")
	case "text[]":
		n := r.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"` + word(r, 1+r.IntN(6)) + `"`
		}
		return lit("{" + strings.Join(parts, ",") + "}")
	case "inet":
		return lit(fmt.Sprintf("%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256)))
	}
	if strings.HasPrefix(typ, "numeric(") {
		return fmt.Sprint(r.IntN(1000))
	}
	return lit(word(r, 8)) // any other type reads its text form
}

// word returns n random characters, spaces and non-ASCII letters included.
func word(r *rand.Rand, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 _-äöüéß"
	rs := []rune(chars)
	var b strings.Builder
	for range n {
		b.WriteRune(rs[r.IntN(len(rs))])
	}
	return b.String()
}

// toast returns an incompressible text of n bytes (random base64): stored
// out of line when n > 2 kB, so an update that leaves it alone sends it
// as "unchanged".
func toast(r *rand.Rand, n int) string {
	b := make([]byte, n*3/4+1)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return lit(base64.StdEncoding.EncodeToString(b)[:n])
}
