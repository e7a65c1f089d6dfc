package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Schema is the set of tables every source database starts with. main has
// a column of every mapped type; big columns are stored out of line
// (EXTERNAL) so that updates leaving them alone send them as unchanged
// TOAST.
const Schema = `
CREATE TABLE main (id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
  n numeric(12,3), nu numeric, b boolean, s text, vc varchar(20), ch char(4), by bytea, u uuid, j jsonb,
  d date, ts timestamp, tz timestamptz, tm time, ttz timetz, iv interval, ai integer[], at text[], ip inet,
  big text);
ALTER TABLE main ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE comp (a integer, b text, v integer, big text, PRIMARY KEY (a, b));
ALTER TABLE comp ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE part (k integer, id bigint, v text, big text, PRIMARY KEY (k, id)) PARTITION BY RANGE (k);
CREATE TABLE part_0 PARTITION OF part FOR VALUES FROM (0) TO (100);
CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (100) TO (200);
CREATE TABLE part_2 PARTITION OF part FOR VALUES FROM (200) TO (300);
CREATE TABLE bulk (id bigint PRIMARY KEY, v integer, s text);
CREATE TABLE hb (id bigserial PRIMARY KEY, round integer, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE bag (a integer, s text, big text);
ALTER TABLE bag REPLICA IDENTITY FULL;
ALTER TABLE bag ALTER COLUMN big SET STORAGE EXTERNAL;
`

// Tables are the tables of Schema in the publication at the start. bag
// has no key: its rows are a multiset.
var Tables = []string{"main", "comp", "part", "bulk", "hb", "bag"}

// Gen draws the actions of a run against one source database. Its choices
// follow its seed; what the database answers (which rows exist) follows
// the run.
type Gen struct {
	R     *rand.Rand
	Scale int
	// Weights by action name (Actions); a missing name weighs 0.
	Weights  map[string]int
	next     atomic.Int64 // next fresh key
	ddlTable string       // the table of the last DDL statement
	Log      func(format string, args ...any)
	Stats    map[string]int
}

// DefaultWeights reach every action.
var DefaultWeights = map[string]int{
	"insert": 10, "update": 10, "update_big": 3, "delete": 6, "key_change": 4, "upsert": 4, "mixed": 6, "keyless": 4,
	"large": 3, "large_abort": 1, "interleaved": 1,
	"truncate": 1, "truncate_partition": 1, "detach_partition": 1, "drop_partition": 1, "attach_partition": 1,
	"add_column": 2, "add_column_default": 2, "add_column_volatile": 1, "add_column_notnull": 1,
	"drop_column": 1, "rename_column": 1, "widen_type": 2, "rewrite_type": 1, "replica_identity": 1,
	"new_table": 1, "drop_table": 1, "keyless_table": 1,
}

// NewGen returns a generator with its own stream of choices.
func NewGen(seed uint64, scale int, weights map[string]int) *Gen {
	g := &Gen{R: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), Scale: max(scale, 1), Weights: weights, Stats: map[string]int{}}
	g.next.Store(1_000_000)
	return g
}

// Pick draws an action name by weight.
func (g *Gen) Pick() string {
	names := make([]string, 0, len(g.Weights))
	total := 0
	for n, w := range g.Weights {
		if w > 0 {
			names = append(names, n)
			total += w
		}
	}
	slices.Sort(names)
	x := g.R.IntN(total)
	for _, n := range names {
		if x < g.Weights[n] {
			return n
		}
		x -= g.Weights[n]
	}
	return names[len(names)-1]
}

func (g *Gen) key() int64 { return g.next.Add(1) }

// Run performs action name on conn.
func (g *Gen) Run(ctx context.Context, conn *pgx.Conn, name string) error {
	g.Stats[name]++
	switch name {
	case "insert":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.insert(ctx, tx, g.table(), 1+g.R.IntN(5)) })
	case "update":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.update(ctx, tx, g.table(), 1+g.R.IntN(4), false) })
	case "update_big":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.update(ctx, tx, g.table(), 1+g.R.IntN(2), true) })
	case "delete":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.delete(ctx, tx, g.table(), 1+g.R.IntN(3)) })
	case "key_change":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.keyChange(ctx, tx, g.table()) })
	case "upsert":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.upsert(ctx, tx) })
	case "mixed":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.mixed(ctx, tx) })
	case "keyless":
		return g.tx(ctx, conn, func(tx pgx.Tx) error { return g.keyless(ctx, tx, 1+g.R.IntN(5)) })
	case "large":
		return g.large(ctx, conn, false)
	case "large_abort":
		return g.large(ctx, conn, true)
	case "truncate":
		tabs := [][]string{{"comp"}, {"main", "comp"}, {"bulk"}, {"part"}, {"bag", "comp"}}[g.R.IntN(5)]
		return execSQL(ctx, conn, "TRUNCATE "+strings.Join(tabs, ", "))
	case "truncate_partition":
		if p := g.partition(ctx, conn); p != "" {
			return execSQL(ctx, conn, "TRUNCATE "+p)
		}
	case "detach_partition":
		if p := g.partition(ctx, conn); p != "" {
			return execSQL(ctx, conn, "ALTER TABLE part DETACH PARTITION "+p, "DROP TABLE "+p)
		}
	case "drop_partition":
		if p := g.partition(ctx, conn); p != "" {
			return execSQL(ctx, conn, "DROP TABLE "+p)
		}
	case "attach_partition":
		return g.attach(ctx, conn)
	case "add_column", "add_column_default", "add_column_volatile", "add_column_notnull":
		return g.touch(ctx, conn, g.addColumn(ctx, conn, name))
	case "drop_column", "rename_column", "widen_type", "rewrite_type":
		return g.touch(ctx, conn, g.alterColumn(ctx, conn, name))
	case "replica_identity":
		t := []string{"main", "comp"}[g.R.IntN(2)]
		ri := []string{"FULL", "DEFAULT"}[g.R.IntN(2)]
		return execSQL(ctx, conn, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY %s", t, ri))
	case "new_table":
		return g.newTable(ctx, conn)
	case "keyless_table":
		return g.keylessTable(ctx, conn)
	case "drop_table":
		return g.dropTable(ctx, conn)
	default:
		return fmt.Errorf("unknown action %q", name)
	}
	return nil
}

// table picks a table for row changes.
func (g *Gen) table() string { return []string{"main", "main", "main", "comp", "part"}[g.R.IntN(5)] }

func (g *Gen) tx(ctx context.Context, conn *pgx.Conn, fn func(pgx.Tx) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func execSQL(ctx context.Context, q querier, stmts ...string) error {
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// Columns lists a table's live columns in order.
func Columns(ctx context.Context, q querier, tbl string) ([]Column, error) {
	rows, err := q.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
		coalesce(a.attnum = ANY (i.indkey), false), a.attnotnull
		FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, tbl)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Column, error) {
		var c Column
		err := row.Scan(&c.Name, &c.Type, &c.Key, &c.NotNull)
		return c, err
	})
}

// values returns SQL values for cols of a new row.
func (g *Gen) values(cols []Column) (names, vals []string) {
	for _, c := range cols {
		names = append(names, ident(c.Name))
		switch {
		case c.Name == "big":
			if g.R.IntN(4) == 0 {
				vals = append(vals, "NULL")
			} else {
				vals = append(vals, toast(g.R, 2100+g.R.IntN(3000)))
			}
		case c.Key && c.Type == "bigint":
			vals = append(vals, fmt.Sprint(g.key()))
		case c.Key && c.Type == "integer":
			vals = append(vals, fmt.Sprint(g.key()%2_000_000_000))
		default:
			vals = append(vals, SQLValue(g.R, c.Type, c.Key || c.NotNull))
		}
	}
	return names, vals
}

func (g *Gen) insert(ctx context.Context, q querier, tbl string, n int) error {
	cols, err := Columns(ctx, q, tbl)
	if err != nil {
		return err
	}
	var ranges [][2]int
	if tbl == "part" {
		if ranges, err = partRanges(ctx, q); err != nil || len(ranges) == 0 {
			return err
		}
	}
	for range n {
		names, vals := g.values(cols)
		if tbl == "part" { // k inside an existing partition
			r := ranges[g.R.IntN(len(ranges))]
			vals[0] = fmt.Sprint(r[0] + g.R.IntN(r[1]-r[0]))
		}
		if err := execSQL(ctx, q, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT DO NOTHING", tbl, strings.Join(names, ", "), strings.Join(vals, ", "))); err != nil {
			return err
		}
	}
	return nil
}

// partRanges returns the [from, to) ranges of part's partitions.
func partRanges(ctx context.Context, q querier) ([][2]int, error) {
	rows, err := q.Query(ctx, `SELECT substring(b from 'FROM \(([0-9]+)\)')::int, substring(b from 'TO \(([0-9]+)\)')::int
		FROM (SELECT pg_get_expr(c.relpartbound, c.oid) b FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'part'::regclass) s ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]int, error) {
		var r [2]int
		err := row.Scan(&r[0], &r[1])
		return r, err
	})
}

// keys returns the WHERE conditions of up to n random rows of tbl.
func (g *Gen) keys(ctx context.Context, q querier, tbl string, cols []Column, n int) ([]string, error) {
	var keyCols []string
	for _, c := range cols {
		if c.Key {
			keyCols = append(keyCols, ident(c.Name))
		}
	}
	if len(keyCols) == 0 {
		return nil, nil
	}
	sel := make([]string, len(keyCols))
	for i, k := range keyCols {
		sel[i] = fmt.Sprintf("quote_literal(%s)", k)
	}
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(sel, ", "), tbl, strings.Join(keyCols, ", ")))
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		vals := make([]string, len(keyCols))
		ptrs := make([]any, len(keyCols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := row.Scan(ptrs...); err != nil {
			return "", err
		}
		conds := make([]string, len(keyCols))
		for i, k := range keyCols {
			conds[i] = k + " = " + vals[i]
		}
		return strings.Join(conds, " AND "), nil
	})
	if err != nil || len(all) == 0 {
		return nil, err
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, all[g.R.IntN(len(all))])
	}
	return out, nil
}

func (g *Gen) update(ctx context.Context, q querier, tbl string, n int, big bool) error {
	cols, err := Columns(ctx, q, tbl)
	if err != nil {
		return err
	}
	where, err := g.keys(ctx, q, tbl, cols, n)
	if err != nil {
		return err
	}
	for _, w := range where {
		var sets []string
		for _, c := range cols {
			if c.Key || (c.Name == "big") != big || (!big && g.R.IntN(3) != 0) {
				continue
			}
			if c.Name == "big" {
				sets = append(sets, "big = "+toast(g.R, 2100+g.R.IntN(3000)))
			} else {
				sets = append(sets, ident(c.Name)+" = "+SQLValue(g.R, c.Type, c.NotNull))
			}
		}
		if len(sets) == 0 { // an update that changes nothing still sends the row
			for _, c := range cols {
				if !c.Key && c.Name != "big" {
					sets = append(sets, ident(c.Name)+" = "+ident(c.Name))
					break
				}
			}
		}
		if len(sets) == 0 {
			continue
		}
		if err := execSQL(ctx, q, fmt.Sprintf("UPDATE %s SET %s WHERE %s", tbl, strings.Join(sets, ", "), w)); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gen) delete(ctx context.Context, q querier, tbl string, n int) error {
	cols, err := Columns(ctx, q, tbl)
	if err != nil {
		return err
	}
	where, err := g.keys(ctx, q, tbl, cols, n)
	if err != nil {
		return err
	}
	for _, w := range where {
		if err := execSQL(ctx, q, fmt.Sprintf("DELETE FROM %s WHERE %s", tbl, w)); err != nil {
			return err
		}
	}
	return nil
}

// keyChange moves a row to a new key, leaving its TOASTed column alone.
func (g *Gen) keyChange(ctx context.Context, q querier, tbl string) error {
	cols, err := Columns(ctx, q, tbl)
	if err != nil {
		return err
	}
	where, err := g.keys(ctx, q, tbl, cols, 1)
	if err != nil || len(where) == 0 {
		return err
	}
	set := map[string]string{
		"main": fmt.Sprintf("id = %d", g.key()),
		"comp": "b = " + lit(word(g.R, 6)),
		"part": fmt.Sprintf("id = %d", g.key()), // k stays: a move across partitions is a delete and an insert
	}[tbl]
	err = execSQL(ctx, q, fmt.Sprintf("UPDATE %s SET %s WHERE %s", tbl, set, where[0]))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return nil
	}
	return err
}

func (g *Gen) upsert(ctx context.Context, q querier) error {
	cols, err := Columns(ctx, q, "main")
	if err != nil {
		return err
	}
	where, err := g.keys(ctx, q, "main", cols, 1)
	if err != nil {
		return err
	}
	id := fmt.Sprint(g.key())
	if len(where) > 0 && g.R.IntN(2) == 0 {
		id = strings.TrimPrefix(where[0], `"id" = `)
		id = strings.Trim(id, "'")
	}
	names, vals := g.values(cols)
	vals[0] = id
	var sets []string // columns come and go with the DDL actions
	for _, c := range cols {
		if !c.Key && c.Name != "big" && g.R.IntN(3) == 0 {
			sets = append(sets, fmt.Sprintf("%s = EXCLUDED.%[1]s", ident(c.Name)))
		}
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	return execSQL(ctx, q, fmt.Sprintf("INSERT INTO main (%s) VALUES (%s) ON CONFLICT (id) %s",
		strings.Join(names, ", "), strings.Join(vals, ", "), conflict))
}

// keyless makes n changes to bag, a table without a key: rows from a
// small domain of values and exact copies (duplicates), and updates and
// deletes of one of several equal rows, some leaving its TOASTed column
// alone.
func (g *Gen) keyless(ctx context.Context, q querier, n int) error {
	for range n {
		rows, err := q.Query(ctx, "SELECT ctid::text FROM bag")
		if err != nil {
			return err
		}
		ctids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		x := g.R.IntN(6)
		if len(ctids) == 0 {
			x = 0
		}
		var ctid string
		if len(ctids) > 0 {
			ctid = lit(ctids[g.R.IntN(len(ctids))])
		}
		big := "NULL"
		if g.R.IntN(2) == 0 {
			big = toast(g.R, 2100+g.R.IntN(1000))
		}
		var stmt string
		switch x {
		case 0:
			stmt = fmt.Sprintf("INSERT INTO bag (a, s, big) VALUES (%d, %s, %s)", g.R.IntN(4), lit(fmt.Sprint(g.R.IntN(2))), big)
		case 1:
			stmt = "INSERT INTO bag SELECT * FROM bag WHERE ctid = " + ctid
		case 2:
			stmt = "UPDATE bag SET a = a + 1 WHERE ctid = " + ctid
		case 3:
			stmt = "UPDATE bag SET big = " + big + " WHERE ctid = " + ctid
		case 4:
			stmt = "DELETE FROM bag WHERE ctid = " + ctid
		case 5:
			stmt = fmt.Sprintf("UPDATE bag SET s = s || 'x' WHERE a = %d", g.R.IntN(4)) // several equal rows at once
		}
		if err := execSQL(ctx, q, stmt); err != nil {
			return err
		}
	}
	return nil
}

// mixed is a transaction of several changes with a savepoint rolled back.
func (g *Gen) mixed(ctx context.Context, tx pgx.Tx) error {
	for i := range 2 + g.R.IntN(5) {
		if i == 2 {
			if err := execSQL(ctx, tx, "SAVEPOINT s"); err != nil {
				return err
			}
		}
		var err error
		switch t := g.table(); g.R.IntN(4) {
		case 0:
			err = g.insert(ctx, tx, t, 1+g.R.IntN(3))
		case 1:
			err = g.update(ctx, tx, t, 1, g.R.IntN(4) == 0)
		case 2:
			err = g.delete(ctx, tx, t, 1)
		case 3:
			err = g.keyChange(ctx, tx, t)
		}
		if err != nil {
			return err
		}
		if i == 3 {
			if err := execSQL(ctx, tx, "ROLLBACK TO SAVEPOINT s"); err != nil {
				return err
			}
		}
	}
	return nil
}

// LargeRows is the size of a large transaction: bigger than
// logical_decoding_work_mem (64 kB in the suite's cluster, so PostgreSQL
// streams it) and than ingest's partial-batch chunk (1 MiB with the
// suite's --memory-budget), about 250 bytes a row.
func (g *Gen) LargeRows() int { return (8000 + g.R.IntN(40000)) * g.Scale }

// large runs a transaction PostgreSQL streams while it is in progress:
// bulk inserts, a rolled-back savepoint, updates and deletes, and a few
// changes to other tables; with abort it rolls back at the end.
func (g *Gen) large(ctx context.Context, conn *pgx.Conn, abort bool) error {
	n := int64(g.LargeRows())
	first := g.next.Add(n+1) - n
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	half := first + n/2
	stmts := []string{
		fmt.Sprintf("INSERT INTO bulk SELECT g, g %% 1000, repeat(md5(g::text), 6) FROM generate_series(%d, %d) g", first, half),
		"SAVEPOINT big",
		fmt.Sprintf("INSERT INTO bulk SELECT g, 0, 'rolled back' FROM generate_series(%d, %d) g", half+1, half+n/4),
		"ROLLBACK TO SAVEPOINT big",
		fmt.Sprintf("INSERT INTO bulk SELECT g, g %% 7, repeat('x', g %% 300) FROM generate_series(%d, %d) g", half+1, first+n-1),
		fmt.Sprintf("UPDATE bulk SET v = v + 1 WHERE id BETWEEN %d AND %d", first, first+n/10),
		fmt.Sprintf("DELETE FROM bulk WHERE id BETWEEN %d AND %d", first+n/10, first+n/5),
	}
	if err := execSQL(ctx, tx, stmts...); err != nil {
		return err
	}
	if err := g.insert(ctx, tx, "main", 2); err != nil {
		return err
	}
	if err := g.update(ctx, tx, "main", 2, false); err != nil {
		return err
	}
	if g.R.IntN(3) == 0 { // bulk stays bounded
		if err := execSQL(ctx, tx, fmt.Sprintf("DELETE FROM bulk WHERE id < %d", first)); err != nil {
			return err
		}
	}
	if abort {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}

// partition returns a random partition of part, or "".
func (g *Gen) partition(ctx context.Context, conn *pgx.Conn) string {
	rows, err := conn.Query(ctx, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'part'::regclass ORDER BY 1")
	if err != nil {
		return ""
	}
	parts, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(parts) == 0 {
		return ""
	}
	return parts[g.R.IntN(len(parts))]
}

// attach creates a table holding rows of a free range of part and
// attaches it as a partition (the rows join part without an insert into
// it), or creates an empty partition.
func (g *Gen) attach(ctx context.Context, conn *pgx.Conn) error {
	var from int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(substring(pg_get_expr(c.relpartbound, c.oid) from 'TO \(([0-9]+)\)')::int), 0)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'part'::regclass`).Scan(&from); err != nil {
		return err
	}
	name := fmt.Sprintf("part_%d", from/100)
	to := from + 100
	if g.R.IntN(2) == 0 {
		return execSQL(ctx, conn, fmt.Sprintf("CREATE TABLE %s PARTITION OF part FOR VALUES FROM (%d) TO (%d)", name, from, to))
	}
	return execSQL(ctx, conn,
		fmt.Sprintf("CREATE TABLE %s (LIKE part INCLUDING ALL)", name),
		fmt.Sprintf("INSERT INTO %s SELECT %d + g %% 100, g, 'attached ' || g, NULL FROM generate_series(1, %d) g", name, from, 5+g.R.IntN(20)),
		fmt.Sprintf("ALTER TABLE part ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)", name, from, to))
}

// column types added by DDL, and how each widens.
var (
	addTypes = []string{"integer", "numeric(10,2)", "character varying(10)", "real", "text", "boolean", "date", "bigint"}
	widen    = map[string]string{"integer": "bigint", "numeric(10,2)": "numeric(14,3)", "character varying(10)": "text", "real": "double precision", "smallint": "integer"}
)

// touch follows a DDL statement on table g.ddlTable with a change to one
// of its rows, as a service does after a migration: PostgreSQL sends a
// table's new schema only with its next change (docs/types.md).
func (g *Gen) touch(ctx context.Context, conn *pgx.Conn, err error) error {
	if err != nil || g.ddlTable == "" {
		return err
	}
	return g.tx(ctx, conn, func(tx pgx.Tx) error {
		if g.ddlTable == "bag" { // no key to pick a row by
			return execSQL(ctx, tx, "UPDATE bag SET a = a WHERE ctid = (SELECT min(ctid) FROM bag)")
		}
		return g.update(ctx, tx, g.ddlTable, 1, false)
	})
}

func (g *Gen) addColumn(ctx context.Context, conn *pgx.Conn, kind string) error {
	tbl := []string{"main", "main", "comp", "bag"}[g.R.IntN(4)]
	g.ddlTable = tbl
	name := fmt.Sprintf("c%d", g.key()%1_000_000)
	typ := addTypes[g.R.IntN(len(addTypes))]
	def := ""
	switch kind {
	case "add_column_default":
		def = " DEFAULT (" + randomValue(g.R, typ) + ")::" + typ
	case "add_column_notnull":
		typ, def = "boolean", " NOT NULL DEFAULT true"
	case "add_column_volatile":
		typ, def = "timestamp with time zone", " DEFAULT clock_timestamp()"
	}
	return execSQL(ctx, conn, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s%s", tbl, name, typ, def))
}

func (g *Gen) alterColumn(ctx context.Context, conn *pgx.Conn, kind string) error {
	tbl := []string{"main", "main", "comp"}[g.R.IntN(3)]
	g.ddlTable = tbl
	cols, err := Columns(ctx, conn, tbl)
	if err != nil {
		return err
	}
	var cands []Column
	for _, c := range cols {
		if c.Key || c.Name == "big" {
			continue
		}
		if kind == "widen_type" && widen[c.Type] == "" {
			continue
		}
		if kind == "rewrite_type" && (c.Type == "text" || strings.HasPrefix(c.Type, "character varying")) {
			// a USING rewrite whose type change is none or a widening:
			// PostgreSQL's messages do not show it (a known problem,
			// docs/reliability.md)
			continue
		}
		if kind == "drop_column" && len(cols) < 6 {
			continue
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return nil
	}
	c := cands[g.R.IntN(len(cands))]
	q := fmt.Sprintf("ALTER TABLE %s ", tbl)
	switch kind {
	case "drop_column":
		q += "DROP COLUMN " + ident(c.Name)
	case "rename_column":
		q += fmt.Sprintf("RENAME COLUMN %s TO %s", ident(c.Name), ident(fmt.Sprintf("r%d", g.key()%1_000_000)))
	case "widen_type":
		q += fmt.Sprintf("ALTER COLUMN %s TYPE %s", ident(c.Name), widen[c.Type])
	case "rewrite_type":
		q += fmt.Sprintf("ALTER COLUMN %s TYPE text USING %s::text || '!'", ident(c.Name), ident(c.Name))
	}
	return execSQL(ctx, conn, q)
}

// newTable creates a table with rows and adds it to the publication (a
// publication cdclake keeps gets it from cdclake): its existing rows reach
// the lake only by a snapshot of it.
func (g *Gen) newTable(ctx context.Context, conn *pgx.Conn) error {
	name := fmt.Sprintf("t_%d", g.key()%1_000_000)
	var pub string
	var managed bool
	err := conn.QueryRow(ctx, "SELECT pubname, coalesce(obj_description(oid, 'pg_publication') LIKE 'cdclake:%', false) FROM pg_publication LIMIT 1").Scan(&pub, &managed)
	if errors.Is(err, pgx.ErrNoRows) { // cdclake has not made its own yet: it will list this table
		managed, err = true, nil
	}
	if err != nil {
		return err
	}
	stmts := []string{
		fmt.Sprintf("CREATE TABLE %s (id integer PRIMARY KEY, v text, n numeric(12,3))", name),
		fmt.Sprintf("INSERT INTO %s SELECT g, md5(g::text), g / 7.0 FROM generate_series(1, %d) g", name, 10+g.R.IntN(200)),
	}
	if !managed {
		stmts = append(stmts, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", ident(pub), name))
	}
	return execSQL(ctx, conn, stmts...)
}

// keylessTable is a service creating a table without a primary key or
// replica identity and changing its rows: cdclake must not make the
// service's own UPDATE and DELETE fail (as a FOR ALL TABLES publication
// does); the table is not in the lake.
func (g *Gen) keylessTable(ctx context.Context, conn *pgx.Conn) error {
	name := fmt.Sprintf("k_%d", g.key()%1_000_000)
	return execSQL(ctx, conn,
		fmt.Sprintf("CREATE TABLE %s (a integer, b text)", name),
		fmt.Sprintf("INSERT INTO %s SELECT g, md5(g::text) FROM generate_series(1, 10) g", name),
		fmt.Sprintf("UPDATE %s SET b = 'changed' WHERE a < 5", name),
		fmt.Sprintf("DELETE FROM %s WHERE a > 8", name))
}

func (g *Gen) dropTable(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, "SELECT relname FROM pg_class WHERE relname ~ '^t_[0-9]+$' AND relkind = 'r' ORDER BY 1")
	if err != nil {
		return err
	}
	tabs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tabs) == 0 {
		return err
	}
	return execSQL(ctx, conn, "DROP TABLE "+tabs[g.R.IntN(len(tabs))])
}
