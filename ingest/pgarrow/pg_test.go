package pgarrow

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from PostgreSQL")

// Reference SQL per value kind: PostgreSQL computes, without its text
// output (or with a different one), a string that refText renders the
// decoded Arrow value to. {} is the value expression.
const (
	refPlain = `{}::text`
	refOut   = `format('%s', {})` // output function text, bpchar padding kept
	refF4    = `CASE WHEN {} = 'NaN' THEN 'NaN' ELSE encode(float4send({}), 'hex') END`
	refF8    = `CASE WHEN {} = 'NaN' THEN 'NaN' ELSE encode(float8send({}), 'hex') END`
	refMoney = `trunc({}::numeric * 100)::text`
	refBytea = `encode({}, 'hex')`
	refDate  = `CASE WHEN {} = 'infinity' THEN '2147483647' WHEN {} = '-infinity' THEN '-2147483648'
		ELSE ({} - '1970-01-01'::date)::text END`
	refTS = `CASE WHEN {} = 'infinity' THEN '9223372036854775807' WHEN {} = '-infinity' THEN '-9223372036854775808'
		ELSE (extract(epoch FROM {}) * 1000000)::bigint::text END`
	refTime = `(extract(epoch FROM {}) * 1000000)::bigint::text`
	// the reference query runs with IntervalStyle iso_8601
	refInterval = `{}::text`
)

// refDec renders numeric(p,s) as the unscaled integer at Arrow scale s;
// NaN becomes NULL as in the decoder.
func refDec(scale int) string {
	return fmt.Sprintf(`CASE WHEN {} = 'NaN' THEN NULL ELSE trunc({} * 10::numeric ^ %d)::text END`, scale)
}

type pgCol struct {
	name, typ string
	ref       string // for arrays: the element's reference
	list      bool
}

var pgCols = []pgCol{
	{"c_bool", "bool", refPlain, false},
	{"c_int2", "int2", refPlain, false},
	{"c_int4", "int4", refPlain, false},
	{"c_int8", "int8", refPlain, false},
	{"c_oid", "oid", refPlain, false},
	{"c_f4", "float4", refF4, false},
	{"c_f8", "float8", refF8, false},
	{"c_num", "numeric", refOut, false},
	{"c_num122", "numeric(12,2)", refDec(2), false},
	{"c_num38", "numeric(38,0)", refDec(0), false},
	{"c_num50", "numeric(50,10)", refOut, false},
	{"c_numneg", "numeric(5,-2)", refDec(0), false},
	{"c_numsmall", "numeric(3,5)", refDec(5), false},
	{"c_money", "money", refMoney, false},
	{"c_text", "text", refOut, false},
	{"c_varchar", "varchar(10)", refOut, false},
	{"c_bpchar", "char(5)", refOut, false},
	{"c_name", "name", refOut, false},
	{"c_citext", "citext", refOut, false},
	{"c_mood", "mood", refOut, false},
	{"c_bytea", "bytea", refBytea, false},
	{"c_uuid", "uuid", refPlain, false},
	{"c_json", "json", refOut, false},
	{"c_jsonb", "jsonb", refOut, false},
	{"c_date", "date", refDate, false},
	{"c_ts", "timestamp", refTS, false},
	{"c_ts3", "timestamp(3)", refTS, false},
	{"c_tstz", "timestamptz", refTS, false},
	{"c_time", "time", refTime, false},
	{"c_timetz", "timetz", refOut, false},
	{"c_interval", "interval", refInterval, false},
	{"c_price", "price", refDec(2), false},
	{"c_posint", "posint", refPlain, false},
	{"c_inet", "inet", refOut, false},
	{"c_cidr", "cidr", refOut, false},
	{"c_macaddr", "macaddr", refOut, false},
	{"c_int4range", "int4range", refOut, false},
	{"c_point", "point", refOut, false},
	{"c_box", "box", refOut, false},
	{"c_bit", "bit(4)", refOut, false},
	{"c_varbit", "varbit", refOut, false},
	{"c_xml", "xml", refOut, false},
	{"c_tsvector", "tsvector", refOut, false},
	{"c_pair", "pair", refOut, false},
	{"c_lsn", "pg_lsn", refOut, false},
	{"a_int", "int[]", refPlain, true},
	{"a_int2d", "int[][]", refPlain, true},
	{"a_text", "text[]", refOut, true},
	{"a_num", "numeric(10,3)[]", refDec(3), true},
	{"a_numu", "numeric[]", refOut, true},
	{"a_tstz", "timestamptz[]", refTS, true},
	{"a_bytea", "bytea[]", refBytea, true},
	{"a_mood", "mood[]", refOut, true},
	{"a_date", "date[]", refDate, true},
	{"a_bool", "bool[]", refPlain, true},
	{"a_f8", "float8[]", refF8, true},
	{"a_uuid", "uuid[]", refPlain, true},
	{"a_jsonb", "jsonb[]", refOut, true},
	{"a_price", "price[]", refDec(2), true},
	{"a_box", "box[]", refOut, true},
	{"a_interval", "interval[]", refInterval, true},
	{"a_money", "money[]", refMoney, true},
	{"a_pair", "pair[]", refOut, true},
	{"a_citext", "citext[]", refOut, true},
}

var pgSetup = []string{
	`CREATE EXTENSION citext`,
	`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
	`CREATE DOMAIN price AS numeric(12,2)`,
	`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`,
	`CREATE TYPE pair AS (a int, b text)`,
}

// pgRows are INSERT column lists and values; columns not named are NULL.
var pgRows = []string{
	`(id, c_bool, c_int2, c_int4, c_int8, c_oid, c_f4, c_f8, c_num, c_num122, c_num38, c_num50, c_numneg, c_numsmall,
	  c_money, c_text, c_varchar, c_bpchar, c_name, c_citext, c_mood, c_bytea, c_uuid, c_json, c_jsonb,
	  c_date, c_ts, c_ts3, c_tstz, c_time, c_timetz, c_interval, c_price, c_posint,
	  c_inet, c_cidr, c_macaddr, c_int4range, c_point, c_box, c_bit, c_varbit, c_xml, c_tsvector, c_pair, c_lsn,
	  a_int, a_int2d, a_text, a_num, a_numu, a_tstz, a_bytea, a_mood, a_date, a_bool, a_f8, a_uuid, a_jsonb,
	  a_price, a_box, a_interval, a_money, a_pair, a_citext)
	VALUES (1, true, -32768, 2147483647, -9223372036854775808, 4294967295, 3.14159, -1.5e-300,
	  '12345678901234567890.123456789012345678901234567890', -1234567890.12,
	  99999999999999999999999999999999999999, 1234567890123456789012345678901234567890.0123456789, 12345, 0.00123,
	  '-92233720368547758.08', E'tab\there "quoted" back\\slash\nnewline ünïcødé 日本', 'varchar', 'ab', 'name',
	  'MiXeD', 'happy', '\x00ff5c270a'::bytea, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
	  '{"a": [1, 2.50, "x"]}', '{"b": {"c": null}, "a": 1}',
	  '0044-03-15 BC', '1900-01-01 00:00:00.5', '2024-01-02 03:04:05.678', '1880-06-01 12:00:00+00', '24:00:00',
	  '04:05:06.789-08', '1 year 2 mons 3 days 04:05:06.5', 12.34, 7,
	  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '[1,10)', '(1.5,2)', '((0,0),(1,1))', B'1010', B'101',
	  '<a>x &amp; y</a>', 'a fat cat', ROW(1, 'a,"b"'), '16/B374D848',
	  '{1,-2,NULL}', '{{1,2},{3,NULL}}',
	  ARRAY['a,b', 'c"d', '{e}', 'NULL', NULL, '', 'back\slash', ' sp ', 'ünï', E'new\nline'],
	  '{1.5,-2.125,NaN}', '{1.5,NaN,Infinity,-Infinity}',
	  ARRAY['2024-01-02 03:04:05+00', 'infinity', '0044-03-15 12:00:00+00 BC', '1880-06-01 12:00:00+00']::timestamptz[],
	  ARRAY['\x00ff'::bytea, NULL, ''::bytea, '\x5c22'::bytea], '{sad,happy}', '{2024-02-29,infinity,"0001-12-31 BC"}',
	  '{t,f,NULL}', '{NaN,Infinity,-Infinity,0.1}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
	  ARRAY['{"k": "v,\"w\""}'::jsonb, 'null'::jsonb], '{1.23,NULL}', ARRAY['((1,1),(0,0))'::box, '((3,3),(2,2))'],
	  '{"1 day","-00:00:01","1 year 2 mons -3 days +04:00:00"}', '{1.00,-2.50}', ARRAY[ROW(1, 'x y')::pair, NULL, ROW(NULL, '')::pair],
	  ARRAY['Ab', 'c d']::citext[])`,
	`(id, c_bool, c_int2, c_int4, c_int8, c_oid, c_f4, c_f8, c_num, c_num122, c_num38, c_num50, c_numneg, c_numsmall,
	  c_money, c_text, c_bpchar, c_bytea, c_uuid, c_date, c_ts, c_ts3, c_tstz, c_time, c_interval, c_price,
	  a_int, a_int2d, a_text, a_tstz, a_bytea)
	VALUES (2, false, 32767, -2147483648, 9223372036854775807, 0, 'NaN', 'Infinity', 'NaN', 'NaN',
	  -99999999999999999999999999999999999999, -0.0000000001, -99900, -0.00999, '92233720368547758.07', '', '',
	  ''::bytea, '00000000-0000-0000-0000-000000000000', 'infinity', '-infinity', 'infinity', 'infinity', '00:00:00',
	  '-1 years -2 mons +3 days -04:05:06.000001', 'NaN',
	  '{}', '{{{1},{2}},{{3},{4}}}', '{}', '{}', '{}')`,
	`(id) VALUES (3)`,
	`(id, c_f4, c_f8, c_num, c_date, c_ts, c_tstz, c_time, c_interval, c_money, c_num122, a_int)
	VALUES (4, '-Infinity', '-Infinity', '-Infinity', '5874897-12-31', '294000-01-01 00:00:00',
	  '0044-03-15 12:34:56.789+00 BC', '23:59:59.999999', '178956970 years 7 mons 2147483647 days 2562047788:00:54.775807',
	  0, 0, '[0:2]={7,8,9}')`,
	`(id, c_f4, c_f8, c_num, c_date, c_ts, c_tstz, c_interval)
	VALUES (5, '1e-45', '4.9e-324', '-0.000000000000000000000000000000000001234', '4714-11-24 BC',
	  '4713-11-24 00:00:00 BC', '4713-11-24 00:00:00+00 BC', '-178956970 years -8 mons -2147483648 days -2562047788:00:54.775807')`,
	`(id, c_text, c_tstz, c_ts, c_interval, a_text)
	VALUES (6, repeat('x', 100000), '2024-03-10 02:30:00.000001+00', '1970-01-01 00:00:00', '-0.5 sec',
	  array_fill('x,y'::text, ARRAY[2, 3]))`,
}

// pgSessions are the settings each pass reads the rows under.
var pgSessions = []map[string]string{
	{"TimeZone": "UTC", "IntervalStyle": "postgres", "bytea_output": "hex"},
	{"TimeZone": "Asia/Kolkata", "IntervalStyle": "postgres_verbose", "bytea_output": "escape"},
	{"TimeZone": "America/St_Johns", "IntervalStyle": "sql_standard", "bytea_output": "hex", "extra_float_digits": "3"},
	{"TimeZone": "Pacific/Chatham", "IntervalStyle": "iso_8601", "bytea_output": "escape", "DateStyle": "ISO, DMY"},
}

func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	if _, err := pgtest.BinDir(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := pgtest.Start(t)
	url := c.CreateDB(t, "types")
	defs := []string{"id int PRIMARY KEY"}
	for _, col := range pgCols {
		defs = append(defs, col.name+" "+col.typ)
	}
	setup := append([]string{}, pgSetup...)
	setup = append(setup,
		"CREATE TABLE t ("+strings.Join(defs, ", ")+")",
		"CREATE PUBLICATION p FOR TABLE t",
		"SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
	for _, r := range pgRows {
		setup = append(setup, "INSERT INTO t "+r)
	}
	c.Exec(t, "types", setup...)

	var first [][]string
	for i, settings := range pgSessions {
		t.Run(settings["TimeZone"], func(t *testing.T) {
			cells := readAll(ctx, t, url, settings, i == 0)
			if first == nil {
				first = cells
				return
			}
			for j := range cells {
				if d := diffCells(first[j], cells[j]); d != "" {
					t.Errorf("%s differs from the %s session: %s", pgCols[j].name, pgSessions[0]["TimeZone"], d)
				}
			}
		})
	}
	t.Run("golden", func(t *testing.T) {
		goldenIntervals(ctx, t, url)
		goldenTimestamptz(ctx, t, url)
	})
	t.Run("names", func(t *testing.T) { checkBuiltins(ctx, t, url) })
}

// readAll reads table t under one set of session settings through a
// text query, COPY and pgoutput, checks all three decode identically and
// match PostgreSQL's reference values, and returns the rendered cells
// per column.
func readAll(ctx context.Context, t *testing.T, url string, settings map[string]string, iceberg bool) [][]string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range settings {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	reg := NewRegistry(conn)

	// column types as a snapshot would take them: from pg_attribute
	cols := make([]*Column, len(pgCols))
	fields := make([]arrow.Field, len(pgCols))
	names := make([]string, len(pgCols))
	for i, pc := range pgCols {
		var oid uint32
		var mod int32
		err := conn.QueryRow(ctx, `SELECT atttypid, atttypmod FROM pg_attribute
			WHERE attrelid = 't'::regclass AND attname = $1`, pc.name).Scan(&oid, &mod)
		if err != nil {
			t.Fatal(err)
		}
		if cols[i], err = reg.Column(ctx, oid, mod); err != nil {
			t.Fatal(err)
		}
		fields[i] = cols[i].Field(pc.name)
		names[i] = pc.name
	}
	checkPGTypes(t, cols)
	schema := arrow.NewSchema(fields, nil)
	query := "SELECT " + strings.Join(names, ", ") + " FROM t ORDER BY id"

	// 1. text-format query with extended protocol
	rr := conn.PgConn().ExecParams(ctx, query, nil, nil, nil, []int16{0})
	var rows [][][]byte
	for rr.NextRow() {
		row := make([][]byte, len(rr.Values()))
		for i, v := range rr.Values() {
			if v != nil {
				row[i] = bytes.Clone(v)
			}
		}
		rows = append(rows, row)
	}
	fds := rr.FieldDescriptions()
	if _, err := rr.Close(); err != nil {
		t.Fatal(err)
	}
	rec := build(t, schema, cols, rows)
	defer rec.Release()
	cells := recordCells(rec)

	// the query result's own types (domains reported as their base type)
	// give the same Arrow types and values
	fdCols, err := reg.Columns(ctx, fds)
	if err != nil {
		t.Fatal(err)
	}
	for i, fc := range fdCols {
		if !arrow.TypeEqual(fc.ArrowType(), cols[i].ArrowType()) {
			t.Errorf("%s: result type %s, pg_attribute type %s", pgCols[i].name, fc.ArrowType(), cols[i].ArrowType())
		}
	}
	compareRecords(t, "query (result types)", cells, build(t, schema, fdCols, rows))

	// 2. reference values computed by PostgreSQL
	compareRef(ctx, t, conn, cells)

	// 3. COPY TO STDOUT, text format
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY ("+query+") TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	compareRecords(t, "COPY", cells, build(t, schema, cols, copyRows(t, buf.Bytes())))

	// 4. pgoutput, as the replication stream sends the inserts
	compareRecords(t, "pgoutput", cells, build(t, schema, cols, pgoutputRows(ctx, t, conn, reg, cols)))

	if iceberg {
		compareRecords(t, "iceberg", cells, nil, tableCells(icebergRoundTrip(t, rec))...)
	}
	for i, col := range cols {
		if n := col.Unrepresentable(); n > 0 {
			t.Logf("%s: %d values beyond the Arrow type, written as NULL", pgCols[i].name, n)
		}
	}
	return cells
}

// checkPGTypes spot-checks the resolved names and Arrow types.
func checkPGTypes(t *testing.T, cols []*Column) {
	want := map[string][2]string{
		"c_int2":     {"smallint", "int32"},
		"c_num122":   {"numeric(12,2)", "decimal(12, 2)"},
		"c_num50":    {"numeric(50,10)", "utf8"},
		"c_numneg":   {"numeric(5,-2)", "decimal(7, 0)"},
		"c_varchar":  {"character varying(10)", "utf8"},
		"c_bpchar":   {"character(5)", "utf8"},
		"c_citext":   {"citext", "utf8"},
		"c_mood":     {"mood", "utf8"},
		"c_price":    {"price", "decimal(12, 2)"},
		"c_posint":   {"posint", "int32"},
		"c_ts3":      {"timestamp(3) without time zone", "timestamp[us]"},
		"c_pair":     {"pair", "utf8"},
		"a_int2d":    {"integer[]", "list<element: int32, nullable>"},
		"a_num":      {"numeric(10,3)[]", "list<element: decimal(10, 3), nullable>"},
		"a_mood":     {"mood[]", "list<element: utf8, nullable>"},
		"a_price":    {"price[]", "list<element: decimal(12, 2), nullable>"},
		"a_citext":   {"citext[]", "list<element: utf8, nullable>"},
		"a_interval": {"interval[]", "list<element: utf8, nullable>"},
	}
	for i, pc := range pgCols {
		w, ok := want[pc.name]
		if !ok {
			continue
		}
		if cols[i].PGType() != w[0] || cols[i].ArrowType().String() != w[1] {
			t.Errorf("%s: %q %s, want %q %s", pc.name, cols[i].PGType(), cols[i].ArrowType(), w[0], w[1])
		}
	}
}
