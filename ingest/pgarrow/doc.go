// Package pgarrow is the one decoding path from PostgreSQL text-format
// values into Arrow builders. The streaming side (pgoutput in text
// mode) and the snapshot side (COPY ... TO STDOUT, or a query with text
// results) both hand it the text PostgreSQL's output functions print,
// so the same row yields identical Arrow values on both paths.
//
// How the parts fit:
//
//   - Registry turns a column's type OID and type modifier (from
//     pg_attribute or a pgoutput Relation message) into a Column.
//     Built-in types need no query; other OIDs are looked up in pg_type
//     once and cached: domains resolve to their base type (keeping the
//     domain name), arrays to a list of their element's mapping, and
//     enums, composites, ranges and unknown types to string.
//   - Column.ArrowType gives the Arrow type for the table schema; every
//     type it returns converts to Iceberg with iceberg-go and writes
//     through its Parquet writer (no unsigned or 16-bit integers, uuid
//     as string, decimals of at most 38 digits).
//   - Column.Append parses one value from []byte without converting it
//     to a string and appends it to the matching builder; nil is NULL.
//     The parsers (parse_*.go) are pure []byte functions tested with
//     byte fixtures, no server needed. Values the Arrow type cannot hold
//     (NaN in a constrained numeric, timestamps past year 294247) are
//     appended as NULL and counted by Column.Unrepresentable.
//   - A Registry and its Columns are safe for concurrent use; rewriting
//     values (bytea, interval, escaped array elements) uses pooled
//     scratch buffers, so decoding allocates nothing per value.
//
// The full mapping and its edge cases (NaN, infinities, BC dates, time
// zones, numeric precision, arrays, unknown types) are in docs/types.md.
//
// What the caller owns: framing. COPY text format escapes (\N, \t,
// \\), CSV quoting and pgoutput's tuple layout are undone before
// Append sees a value, and unchanged-TOAST columns are the caller's to
// skip. Session settings: DateStyle must be ISO (see SessionSettings);
// TimeZone and IntervalStyle may be anything for the types decoded
// here, but types passed through as text whose output depends on them
// (tstzrange, composites holding a timestamptz) only match across
// paths when both use the same settings, so use SessionSettings on
// both.
package pgarrow

// SessionSettings returns the run-time parameters both the replication
// and the snapshot connections should set (for pgx:
// ConnConfig.RuntimeParams) so that every text value, including those
// passed through as strings, is printed the same way on both paths.
func SessionSettings() map[string]string {
	return map[string]string{
		"DateStyle":          "ISO, MDY",
		"IntervalStyle":      "iso_8601",
		"TimeZone":           "UTC",
		"extra_float_digits": "3",
		"bytea_output":       "hex",
		"client_encoding":    "UTF8",
	}
}
