package query

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"

	"github.com/cdclake/cdclake/lakeformat"
)

// column is one column of a view: its name, DuckDB type and Iceberg
// field id in the changelog.
type column struct {
	Name string
	Type string
	ID   int
}

// viewSpec is everything needed to write the two views of one lake table.
// It is built from Iceberg metadata (views.go) and turned into SQL here,
// without I/O, so the SQL is table-tested.
type viewSpec struct {
	// Source lists the source columns, in changelog schema order.
	Source []column
	// Meta lists the changelog's metadata columns (_cdc_*).
	Meta []column
	// Keys are the primary-key columns; empty means a table without a
	// key, whose rows are a multiset (multisetSQL).
	Keys []string
	// AllChanges are the local paths of every changelog file.
	AllChanges []string
	// Tail are the changelog files that may hold rows at or after the
	// snapshot watermark (all of them when there is no snapshot).
	Tail []string
	// HasSnapshot tells whether a snapshot table exists; Snapshot lists
	// its files (source columns plus _cdc_lsn; columns it lacks are NULL).
	HasSnapshot bool
	Snapshot    []string
	// SnapshotIDs maps changelog field ids to the snapshot table's field
	// ids (the tables number their fields independently).
	SnapshotIDs map[int]int
	// Watermark is the snapshot's cdclake.source-lsn: it holds every
	// change below it and none at or above it.
	Watermark int64
	// Defaults are the columns added with a constant default
	// (cdclake.column-defaults): rows that predate them read the default.
	Defaults []columnDefault
}

// columnDefault is a column's default for the rows written before
// (LSN, Seq), as a SQL expression.
type columnDefault struct {
	Name     string
	SQL      string
	LSN, Seq int64
}

// withDefaults returns SQL for rel with the rows that predate a column
// reading its default. Changelog rows are ordered by (_cdc_lsn,
// _cdc_seq); snapshot rows (seq false) by _cdc_lsn alone, which is exact
// there: a snapshot table whose watermark is past a column's LSN has its
// default filled in already.
func withDefaults(rel string, defaults []columnDefault, seq bool) string {
	if len(defaults) == 0 {
		return rel
	}
	repl := make([]string, len(defaults))
	for i, d := range defaults {
		before := fmt.Sprintf("%s < %d", lakeformat.ColLSN, d.LSN)
		if seq {
			before = fmt.Sprintf("(%s OR (%s = %d AND %s < %d))", before, lakeformat.ColLSN, d.LSN, lakeformat.ColSeq, d.Seq)
		}
		q := quoteIdent(d.Name)
		repl[i] = fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END AS %s", before, d.SQL, q, q)
	}
	return "(SELECT * REPLACE (" + strings.Join(repl, ", ") + ") FROM " + rel + ")"
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteString quotes a SQL string literal.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// relation returns SQL for a relation with exactly cols (in that order,
// typed), reading files. Columns are found in the files by Iceberg field
// id (column.ID), whatever their name when a file was written (renamed
// since) or type (promoted since); columns with ID 0 and columns a file
// lacks are NULL. With no files the relation is empty.
func relation(cols []column, files []string) string {
	sel := make([]string, len(cols))
	var schema []string
	for i, c := range cols {
		if c.ID == 0 {
			sel[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, quoteIdent(c.Name))
			continue
		}
		sel[i] = quoteIdent(c.Name)
		schema = append(schema, fmt.Sprintf("%d: {name: %s, type: %s, default_value: NULL}",
			c.ID, quoteString(c.Name), quoteString(c.Type)))
	}
	if len(files) == 0 || len(schema) == 0 {
		for i, c := range cols {
			sel[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, quoteIdent(c.Name))
		}
		return "(SELECT " + strings.Join(sel, ", ") + " WHERE false)"
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = quoteString(f)
	}
	return fmt.Sprintf("(SELECT %s FROM read_parquet([%s], schema = MAP {%s}, hive_partitioning = false))",
		strings.Join(sel, ", "), strings.Join(quoted, ", "), strings.Join(schema, ", "))
}

// changesSQL is the body of the <table>__changes view: the changelog.
func changesSQL(v viewSpec) string {
	return "SELECT * FROM " + relation(append(append([]column{}, v.Source...), v.Meta...), v.AllChanges)
}

// currentSQL is the body of the <table> view: the current state, merged
// on read from the snapshot and the changes at or after its watermark.
//
//   - A truncate drops the snapshot and every change before it.
//   - Per key, the latest change (by _cdc_lsn, _cdc_seq) wins; a delete
//     drops the row.
//   - A column named in _cdc_unchanged was not sent: it keeps the value of
//     the latest earlier version that had it (change or snapshot row).
//   - A key change is a delete of the old key and, next in the same
//     transaction, an update of the new one. When that update did not send
//     a column (unchanged TOAST), the value is the old key's: the rows of
//     the old key's last life before the move count as earlier versions of
//     the new key (mv, anc), through any number of moves, as compaction's
//     fold does. An update of a key that was live before is no move (a
//     delete of one row then an update of another in one transaction).
//
// Most keys change once between compactions (and every key of an initial
// copy appears once), so only keys with several changes or with unchanged
// columns are aggregated (multi); a key's single complete change is its
// row, and snapshot rows whose key did not change pass through (anti
// joins). The changelog and snapshot scans are inlined (not
// materialized), so projections and filters reach the Parquet readers.
func currentSQL(v viewSpec) string {
	if len(v.Keys) == 0 {
		return multisetSQL(v)
	}
	keys := v.Keys
	isKey := map[string]bool{}
	for _, k := range keys {
		isKey[k] = true
	}
	src := make([]string, len(v.Source))
	for i, c := range v.Source {
		src[i] = quoteIdent(c.Name)
	}
	qk := make([]string, len(keys))
	for i, k := range keys {
		qk[i] = quoteIdent(k)
	}
	on := func(l, r string) string {
		parts := make([]string, len(qk))
		for i, k := range qk {
			parts[i] = fmt.Sprintf("%s.%s IS NOT DISTINCT FROM %s.%s", l, k, r, k)
		}
		return strings.Join(parts, " AND ")
	}
	srcList, keyList := strings.Join(src, ", "), strings.Join(qk, ", ")
	w := strconv.FormatInt(v.Watermark, 10)

	// key columns of a move's old key, in the move CTEs
	from := make([]string, len(keys))
	for i := range keys {
		from[i] = quoteIdent(fmt.Sprintf("_cdc_from%d", i))
	}
	onFrom := func(l, r string) string { return onFromKeys(l, r, qk, from) } // l's keys equal r's old keys
	fromList := strings.Join(from, ", ")

	var b strings.Builder
	b.WriteString("WITH RECURSIVE c AS NOT MATERIALIZED (SELECT * FROM " + withDefaults(relation(append(append([]column{}, v.Source...), v.Meta...), v.Tail), v.Defaults, true))
	if v.HasSnapshot {
		b.WriteString(" WHERE " + lakeformat.ColLSN + " >= " + w)
	}
	b.WriteString("),\n")
	b.WriteString("tr AS (SELECT " + lakeformat.ColLSN + " AS tl, " + lakeformat.ColSeq + " AS ts FROM c WHERE " + lakeformat.ColOp +
		" = 't' ORDER BY tl DESC, ts DESC LIMIT 1),\n")
	b.WriteString("live AS NOT MATERIALIZED (SELECT c.* FROM c LEFT JOIN tr ON true WHERE c." + lakeformat.ColOp + " <> 't' AND " +
		"(tr.tl IS NULL OR c." + lakeformat.ColLSN + " > tr.tl OR (c." + lakeformat.ColLSN + " = tr.tl AND c." + lakeformat.ColSeq + " > tr.ts))),\n")
	// possible moves: an update with unsent columns right after a delete
	// of another key in its transaction
	oldKeys := make([]string, len(qk))
	for i, k := range qk {
		oldKeys[i] = "d." + k + " AS " + from[i]
	}
	b.WriteString("mc AS (SELECT " + prefixed("u.", qk) + ", " + strings.Join(oldKeys, ", ") + ", (u." + lakeformat.ColLSN + "::HUGEINT << 64) + u." + lakeformat.ColSeq +
		" AS _cdc_mo FROM live u JOIN live d ON d." + lakeformat.ColLSN + " = u." + lakeformat.ColLSN + " AND d." + lakeformat.ColSeq + " = u." + lakeformat.ColSeq + " - 1" +
		" WHERE u." + lakeformat.ColOp + " = 'u' AND len(coalesce(u." + lakeformat.ColUnchanged + ", []::VARCHAR[])) > 0 AND d." + lakeformat.ColOp + " = 'd' AND NOT (" + on("u", "d") + ")),\n")
	b.WriteString("multi AS (SELECT " + keyList + " FROM live GROUP BY " + keyList +
		" HAVING count(*) > 1 OR bool_or(len(coalesce(" + lakeformat.ColUnchanged + ", []::VARCHAR[])) > 0)" +
		" UNION SELECT " + fromList + " FROM mc),\n")
	if v.HasSnapshot {
		// the snapshot table's files hold its own field ids; columns it
		// lacks (added since) are NULL
		var snapCols []column
		for _, c := range append(append([]column{}, v.Source...), column{Name: lakeformat.ColLSN, Type: "BIGINT", ID: v.lsnID()}) {
			snapCols = append(snapCols, column{Name: c.Name, Type: c.Type, ID: v.SnapshotIDs[c.ID]})
		}
		b.WriteString("s AS NOT MATERIALIZED (SELECT * FROM " + withDefaults(relation(snapCols, v.Snapshot), v.Defaults, false) + " WHERE NOT EXISTS (SELECT 1 FROM tr)),\n")
	}
	b.WriteString("o AS (SELECT " + prefixed("live.", src) + ", " + lakeformat.ColOp + ", " + lakeformat.ColLSN + ", " + lakeformat.ColUnchanged +
		", (" + lakeformat.ColLSN + "::HUGEINT << 64) + " + lakeformat.ColSeq + " AS _o FROM live SEMI JOIN multi ON " + on("live", "multi"))
	if v.HasSnapshot {
		b.WriteString("\n  UNION ALL SELECT " + prefixed("s.", src) + ", 'r', s." + lakeformat.ColLSN +
			", NULL::VARCHAR[], s." + lakeformat.ColLSN + "::HUGEINT << 64 FROM s SEMI JOIN multi ON " + on("s", "multi"))
	}
	b.WriteString("),\n")
	// the moves: the new key had no live row just before
	b.WriteString("mv AS (SELECT mc.* FROM mc LEFT JOIN o ON " + on("o", "mc") + " AND o._o < mc._cdc_mo GROUP BY ALL" +
		" HAVING coalesce(arg_max(o." + lakeformat.ColOp + ", o._o), 'd') = 'd'),\n")
	// each move with the one before it into its old key (_cdc_lo)
	b.WriteString("mvx AS (SELECT g.*, max(h._cdc_mo) AS _cdc_lo FROM mv g LEFT JOIN mv h ON " + onFrom("h", "g") +
		" AND h._cdc_mo < g._cdc_mo GROUP BY ALL),\n")
	// (key, old key, lo, hi): the old key's rows in [lo, hi) are earlier
	// versions of the key's row
	b.WriteString("anc AS (SELECT " + keyList + ", " + keyList2(qk, from) + ", max(_cdc_mo) AS _cdc_lo, NULL::HUGEINT AS _cdc_hi FROM mv GROUP BY " + keyList +
		"\n  UNION ALL SELECT " + prefixed("anc.", qk) + ", " + prefixed("x.", from) + ", x._cdc_lo, x._cdc_mo FROM anc JOIN mvx x ON " +
		onFrom("x", "anc") + " AND x._cdc_mo = anc._cdc_lo),\n")
	moved := make([]string, len(v.Source))
	for i, c := range v.Source {
		if isKey[c.Name] {
			moved[i] = "anc." + quoteIdent(c.Name)
		} else {
			moved[i] = "o." + quoteIdent(c.Name)
		}
	}
	b.WriteString("o2 AS (SELECT o.* FROM o ANTI JOIN (SELECT DISTINCT " + keyList + " FROM mv) g ON " + on("o", "g") +
		"\n  UNION ALL SELECT " + strings.Join(moved, ", ") + ", o." + lakeformat.ColOp + ", o." + lakeformat.ColLSN + ", o." + lakeformat.ColUnchanged + ", o._o FROM anc JOIN o ON " +
		onFrom("o", "anc") + " AND (anc._cdc_lo IS NULL OR o._o >= anc._cdc_lo) AND (anc._cdc_hi IS NULL OR o._o < anc._cdc_hi)),\n")
	sel := append([]string{}, qk...)
	for _, c := range v.Source {
		if isKey[c.Name] {
			continue
		}
		q := quoteIdent(c.Name)
		sel = append(sel, fmt.Sprintf("(arg_max({'v': %s}, _o) FILTER (WHERE NOT list_contains(coalesce(%s, []::VARCHAR[]), %s))).v AS %s",
			q, lakeformat.ColUnchanged, quoteString(c.Name), q))
	}
	sel = append(sel, "arg_max("+lakeformat.ColOp+", _o) AS _op", "max("+lakeformat.ColLSN+") AS "+lakeformat.ColLSN)
	b.WriteString("m AS (SELECT " + strings.Join(sel, ", ") + " FROM o2 GROUP BY " + keyList + ")\n")
	if v.HasSnapshot {
		b.WriteString("SELECT " + prefixed("s.", src) + ", s." + lakeformat.ColLSN + " FROM s ANTI JOIN (SELECT DISTINCT " + keyList +
			" FROM live) k ON " + on("s", "k") + "\nUNION ALL ")
	}
	b.WriteString("SELECT " + prefixed("live.", src) + ", live." + lakeformat.ColLSN + " FROM live ANTI JOIN multi ON " + on("live", "multi") +
		" WHERE live." + lakeformat.ColOp + " <> 'd'\nUNION ALL ")
	b.WriteString("SELECT " + srcList + ", " + lakeformat.ColLSN + " FROM m WHERE _op <> 'd'")
	return b.String()
}

// multisetSQL is the body of the <table> view of a table without a key
// (REPLICA IDENTITY FULL, no primary key): its rows are a multiset, so
// each row counts: an insert or copied row adds one of its value, a delete
// (the whole old row) removes one, and an update is a delete of the old
// row then an insert of the new one (ingest writes it so). An update's
// column PostgreSQL did not send (unchanged TOAST) is the old row's, from
// the delete just before it. The result holds each row as many times as
// the source does, duplicates included. Rows that predate a column added
// with a default read it (withDefaults), so a delete matches them.
func multisetSQL(v viewSpec) string {
	src := make([]string, len(v.Source))
	for i, c := range v.Source {
		src[i] = quoteIdent(c.Name)
	}
	w := strconv.FormatInt(v.Watermark, 10)
	var b strings.Builder
	b.WriteString("WITH c AS NOT MATERIALIZED (SELECT * FROM " + withDefaults(relation(append(append([]column{}, v.Source...), v.Meta...), v.Tail), v.Defaults, true))
	if v.HasSnapshot {
		b.WriteString(" WHERE " + lakeformat.ColLSN + " >= " + w)
	}
	b.WriteString("),\n")
	b.WriteString("tr AS (SELECT " + lakeformat.ColLSN + " AS tl, " + lakeformat.ColSeq + " AS ts FROM c WHERE " + lakeformat.ColOp +
		" = 't' ORDER BY tl DESC, ts DESC LIMIT 1),\n")
	b.WriteString("live AS NOT MATERIALIZED (SELECT c.* FROM c LEFT JOIN tr ON true WHERE c." + lakeformat.ColOp + " <> 't' AND " +
		"(tr.tl IS NULL OR c." + lakeformat.ColLSN + " > tr.tl OR (c." + lakeformat.ColLSN + " = tr.tl AND c." + lakeformat.ColSeq + " > tr.ts))),\n")
	filled := make([]string, len(v.Source))
	for i, c := range v.Source {
		q := quoteIdent(c.Name)
		filled[i] = fmt.Sprintf("CASE WHEN list_contains(coalesce(live.%s, []::VARCHAR[]), %s) THEN d.%s ELSE live.%s END AS %s",
			lakeformat.ColUnchanged, quoteString(c.Name), q, q, q)
	}
	b.WriteString("ev AS (SELECT " + strings.Join(filled, ", ") + ", CASE WHEN live." + lakeformat.ColOp + " = 'd' THEN -1 ELSE 1 END AS _w, live." + lakeformat.ColLSN +
		" FROM live LEFT JOIN live d ON live." + lakeformat.ColOp + " = 'u' AND d." + lakeformat.ColOp + " = 'd' AND d." + lakeformat.ColLSN + " = live." + lakeformat.ColLSN +
		" AND d." + lakeformat.ColSeq + " = live." + lakeformat.ColSeq + " - 1 AND len(coalesce(live." + lakeformat.ColUnchanged + ", []::VARCHAR[])) > 0")
	if v.HasSnapshot {
		var snapCols []column
		for _, c := range append(append([]column{}, v.Source...), column{Name: lakeformat.ColLSN, Type: "BIGINT", ID: v.lsnID()}) {
			snapCols = append(snapCols, column{Name: c.Name, Type: c.Type, ID: v.SnapshotIDs[c.ID]})
		}
		b.WriteString("\n  UNION ALL SELECT " + strings.Join(src, ", ") + ", 1, " + lakeformat.ColLSN + " FROM " + withDefaults(relation(snapCols, v.Snapshot), v.Defaults, false) +
			" WHERE NOT EXISTS (SELECT 1 FROM tr)")
	}
	b.WriteString("),\n")
	b.WriteString("n AS (SELECT " + strings.Join(src, ", ") + ", sum(_w) AS _n, max(" + lakeformat.ColLSN + ") FILTER (WHERE _w > 0) AS " + lakeformat.ColLSN +
		" FROM ev GROUP BY ALL HAVING sum(_w) > 0)\n")
	b.WriteString("SELECT " + strings.Join(src, ", ") + ", " + lakeformat.ColLSN + " FROM (SELECT *, unnest(range(_n::BIGINT)) FROM n)")
	return b.String()
}

// keyList2 lists the key columns as the old-key columns: "k" AS "_cdc_from0".
func keyList2(qk, from []string) string {
	out := make([]string, len(qk))
	for i, k := range qk {
		out[i] = k + " AS " + from[i]
	}
	return strings.Join(out, ", ")
}

// onFromKeys joins l's keys with r's old keys (r's from columns).
func onFromKeys(l, r string, qk, from []string) string {
	parts := make([]string, len(qk))
	for i, k := range qk {
		parts[i] = fmt.Sprintf("%s.%s IS NOT DISTINCT FROM %s.%s", l, k, r, from[i])
	}
	return strings.Join(parts, " AND ")
}

// lsnID returns the changelog field id of _cdc_lsn.
func (v viewSpec) lsnID() int {
	for _, c := range v.Meta {
		if c.Name == lakeformat.ColLSN {
			return c.ID
		}
	}
	return 0
}

func prefixed(p string, names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return strings.Join(out, ", ")
}

// duckType returns the DuckDB type of an Iceberg type.
func duckType(t iceberg.Type) (string, error) {
	switch t := t.(type) {
	case iceberg.BooleanType:
		return "BOOLEAN", nil
	case iceberg.Int32Type:
		return "INTEGER", nil
	case iceberg.Int64Type:
		return "BIGINT", nil
	case iceberg.Float32Type:
		return "FLOAT", nil
	case iceberg.Float64Type:
		return "DOUBLE", nil
	case iceberg.DecimalType:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision(), t.Scale()), nil
	case iceberg.DateType:
		return "DATE", nil
	case iceberg.TimeType:
		return "TIME", nil
	case iceberg.TimestampType, iceberg.TimestampNsType:
		return "TIMESTAMP", nil
	case iceberg.TimestampTzType, iceberg.TimestampTzNsType:
		return "TIMESTAMPTZ", nil
	case iceberg.StringType:
		return "VARCHAR", nil
	case iceberg.UUIDType:
		return "UUID", nil
	case iceberg.BinaryType, iceberg.FixedType:
		return "BLOB", nil
	case *iceberg.ListType:
		e, err := duckType(t.Element)
		if err != nil {
			return "", err
		}
		return e + "[]", nil
	case *iceberg.MapType:
		k, err := duckType(t.KeyType)
		if err != nil {
			return "", err
		}
		v, err := duckType(t.ValueType)
		if err != nil {
			return "", err
		}
		return "MAP(" + k + ", " + v + ")", nil
	case *iceberg.StructType:
		var fs []string
		for _, f := range t.FieldList {
			ft, err := duckType(f.Type)
			if err != nil {
				return "", err
			}
			fs = append(fs, quoteIdent(f.Name)+" "+ft)
		}
		return "STRUCT(" + strings.Join(fs, ", ") + ")", nil
	}
	return "", fmt.Errorf("iceberg type %s has no DuckDB equivalent here", t)
}
