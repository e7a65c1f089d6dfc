package torture

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/jackc/pgx/v5"
)

// Rows is a table's rows in canonical text form: key -> column -> value
// (nil for NULL), columns named as in the source.
type Rows map[string]map[string]*string

// SessionSQL makes PostgreSQL print values the way the canonical form
// expects them.
var SessionSQL = []string{"SET TimeZone = 'UTC'", "SET IntervalStyle = 'iso_8601'", "SET DateStyle = 'ISO'",
	"SET extra_float_digits = 1", "SET bytea_output = 'hex'"}

// canonExpr is the SQL that prints column c of the source in canonical
// form: the text PostgreSQL prints, except for numbers of days and
// microseconds for dates and times, and NULL for a constrained numeric's
// NaN (docs/types.md).
func canonExpr(c Column) string {
	col := ident(c.Name)
	t := c.Type
	switch {
	case t == "boolean":
		return col + "::text"
	case strings.HasPrefix(t, "numeric("):
		return fmt.Sprintf("CASE WHEN %s = 'NaN' THEN NULL ELSE %[1]s::text END", col)
	case t == "date":
		return fmt.Sprintf("CASE WHEN isfinite(%s) THEN (%[1]s - DATE '1970-01-01')::text ELSE %[1]s::text END", col)
	case strings.HasPrefix(t, "timestamp"):
		return fmt.Sprintf("CASE WHEN isfinite(%s) THEN (extract(epoch FROM %[1]s) * 1000000)::bigint::text ELSE %[1]s::text END", col)
	case strings.HasPrefix(t, "time") && strings.HasSuffix(t, "without time zone"):
		return fmt.Sprintf("(extract(epoch FROM %s) * 1000000)::bigint::text", col)
	}
	return col // the output function's text, e.g. char(n) keeps its padding
}

// floatBits returns 32 or 64 for float columns, else 0.
func floatBits(typ string) int {
	switch typ {
	case "real":
		return 32
	case "double precision":
		return 64
	}
	return 0
}

func canonFloat(s string, bits int) string {
	v, err := strconv.ParseFloat(s, bits)
	if err != nil {
		return "unparsable float " + s
	}
	return floatText(v, bits)
}

// floatText prints a float exactly; -0 prints as 0, since PostgreSQL
// holds -0 = 0 and DuckDB's hash aggregation may fold one into the other.
func floatText(v float64, bits int) string {
	if v == 0 {
		v = 0
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}

// ReadSource reads table tbl of the source in canonical form.
func ReadSource(ctx context.Context, conn *pgx.Conn, tbl string) (Rows, []Column, error) {
	cols, err := Columns(ctx, conn, tbl)
	if err != nil {
		return nil, nil, err
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = canonExpr(c)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(exprs, ", "), ident(tbl)), pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, nil, fmt.Errorf("read source %s: %w", tbl, err)
	}
	defer rows.Close()
	out := Rows{}
	k := newKeyer(cols)
	for rows.Next() {
		raw := rows.RawValues()
		row := make(map[string]*string, len(cols))
		for i, c := range cols {
			if raw[i] != nil {
				s := string(raw[i])
				if b := floatBits(c.Type); b > 0 {
					s = canonFloat(s, b)
				}
				row[c.Name] = &s
			} else {
				row[c.Name] = nil
			}
		}
		key, _ := k.key(row)
		out[key] = row
	}
	return out, cols, rows.Err()
}

// keyer names the rows of a table: by their key columns' values, or, for
// a table without a key (a multiset), by all their values and how many
// equal rows came before, so that a duplicate lost or added shows as a
// row missing or extra.
type keyer struct {
	cols  []Column
	keyed bool
	seen  map[string]int
}

func newKeyer(cols []Column) *keyer {
	k := &keyer{cols: cols, seen: map[string]int{}}
	for _, c := range cols {
		k.keyed = k.keyed || c.Key
	}
	return k
}

// text is row's key columns' values, or all its values in a keyless table.
func (k *keyer) text(row map[string]*string) string {
	var parts []string
	for _, c := range k.cols {
		if !k.keyed {
			parts = append(parts, short(str(row[c.Name])))
		} else if c.Key {
			parts = append(parts, str(row[c.Name]))
		}
	}
	return strings.Join(parts, "|")
}

// key returns row's name; dup is true when a keyed table has its key twice.
func (k *keyer) key(row map[string]*string) (key string, dup bool) {
	key = k.text(row)
	n := k.seen[key]
	k.seen[key]++
	if !k.keyed {
		return fmt.Sprintf("%s#%d", key, n+1), false
	}
	return key, n > 0
}

// short abbreviates a long value in a keyless row's name: its start and
// a hash of the whole.
func short(s string) string {
	if len(s) <= 40 {
		return s
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%s..%x", s[:12], h.Sum64())
}

func str(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}

// LakeNames maps source column names to lake column names: the same
// unless a changelog's cdclake.column-names says otherwise.
func LakeNames(prop string) (map[string]string, error) {
	m := map[string]string{}
	if prop == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(prop), &m); err != nil {
		return nil, fmt.Errorf("read cdclake.column-names: %w", err)
	}
	return m, nil
}

func lakeName(names map[string]string, src string) string {
	if n := names[src]; n != "" {
		return n
	}
	return src
}

// Value formats row i of arr in canonical form (nil for NULL).
func Value(arr arrow.Array, i int) *string {
	if arr.IsNull(i) {
		return nil
	}
	s := format(arr, i)
	return &s
}

func format(arr arrow.Array, i int) string {
	switch a := arr.(type) {
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10)
	case *array.Float32:
		return floatText(float64(a.Value(i)), 32)
	case *array.Float64:
		return floatText(a.Value(i), 64)
	case *array.Decimal128:
		return decimalText(a.Value(i), a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Binary:
		return `\x` + hex.EncodeToString(a.Value(i))
	case *array.LargeBinary:
		return `\x` + hex.EncodeToString(a.Value(i))
	case *array.BinaryView:
		return `\x` + hex.EncodeToString(a.Value(i))
	case *array.FixedSizeBinary: // uuid
		return `\x` + hex.EncodeToString(a.Value(i))
	case *array.Date32:
		switch v := int32(a.Value(i)); v {
		case math.MaxInt32:
			return "infinity"
		case math.MinInt32:
			return "-infinity"
		default:
			return strconv.Itoa(int(v))
		}
	case *array.Timestamp:
		v := int64(a.Value(i))
		switch v {
		case math.MaxInt64:
			return "infinity"
		case math.MinInt64:
			return "-infinity"
		}
		switch a.DataType().(*arrow.TimestampType).Unit {
		case arrow.Second:
			v *= 1e6
		case arrow.Millisecond:
			v *= 1e3
		case arrow.Nanosecond:
			v /= 1e3
		}
		return strconv.FormatInt(v, 10)
	case *array.Time64:
		v := int64(a.Value(i))
		if a.DataType().(*arrow.Time64Type).Unit == arrow.Nanosecond {
			v /= 1e3
		}
		return strconv.FormatInt(v, 10)
	case array.ListLike:
		from, to := a.ValueOffsets(i)
		vals := a.ListValues()
		parts := make([]string, 0, to-from)
		for j := int(from); j < int(to); j++ {
			if vals.IsNull(j) {
				parts = append(parts, "NULL")
				continue
			}
			v := format(vals, j)
			switch vals.(type) {
			case *array.String, *array.LargeString, *array.StringView:
				v = arrayQuote(v)
			}
			parts = append(parts, v)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprintf("unsupported arrow type %s", arr.DataType())
}

// arrayQuote quotes an array element as PostgreSQL's array output does.
func arrayQuote(s string) string {
	if s != "" && !strings.EqualFold(s, "NULL") && !strings.ContainsAny(s, "{},\"\\ \t\n\r\v\f") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// decimalText prints a decimal exactly with its scale's digits.
func decimalText(n decimal128.Num, scale int32) string {
	b := n.BigInt()
	neg := b.Sign() < 0
	digits := new(big.Int).Abs(b).String()
	if scale > 0 {
		for len(digits) <= int(scale) {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-int(scale)] + "." + digits[len(digits)-int(scale):]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// Collect turns records of a table into Rows with the source's column
// names: names maps them to the lake's, keys are the key columns.
func Collect(recs []arrow.RecordBatch, cols []Column, names map[string]string) (Rows, []string, error) {
	out := Rows{}
	var dups []string
	k := newKeyer(cols)
	for _, rec := range recs {
		idx := map[string]int{}
		for i, f := range rec.Schema().Fields() {
			idx[f.Name] = i
		}
		for r := range int(rec.NumRows()) {
			row := map[string]*string{}
			for _, c := range cols {
				j, ok := idx[lakeName(names, c.Name)]
				if !ok {
					if c.Key {
						return nil, nil, fmt.Errorf("lake has no key column %s", lakeName(names, c.Name))
					}
					continue // reported as a missing column by Diff
				}
				row[c.Name] = Value(rec.Column(j), r)
			}
			key, dup := k.key(row)
			if dup {
				dups = append(dups, key)
			}
			out[key] = row
		}
	}
	return out, dups, nil
}

// Diff lists how lake differs from src, at most limit lines.
func Diff(path, table string, cols []Column, src, lake Rows, limit int) []string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < limit {
			out = append(out, fmt.Sprintf("%s %s: ", path, table)+fmt.Sprintf(format, args...))
		} else if len(out) == limit {
			out = append(out, fmt.Sprintf("%s %s: ... more differences", path, table))
		}
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	missing, wrong := 0, 0
	for _, k := range keys {
		l, ok := lake[k]
		if !ok {
			missing++
			add("row %s missing", k)
			continue
		}
		for _, c := range cols {
			lv, present := l[c.Name]
			sv := src[k][c.Name]
			if !present {
				wrong++
				add("row %s column %s (%s): lake has no such column, source %s", k, c.Name, c.Type, clip(str(sv)))
				continue
			}
			if (lv == nil) != (sv == nil) || (lv != nil && *lv != *sv) {
				wrong++
				add("row %s column %s (%s): lake %s, source %s", k, c.Name, c.Type, clip(str(lv)), clip(str(sv)))
			}
		}
	}
	extra := 0
	for k := range lake {
		if _, ok := src[k]; !ok {
			extra++
			add("row %s not in the source", k)
		}
	}
	if len(out) > 0 {
		out = append(out, fmt.Sprintf("%s %s: %d source rows, %d lake rows: %d missing, %d wrong values, %d extra",
			path, table, len(src), len(lake), missing, wrong, extra))
	}
	return out
}

func clip(s string) string {
	if len(s) > 60 {
		return fmt.Sprintf("%s...(%d bytes)", s[:40], len(s))
	}
	return s
}
