package ingest

import (
	"testing"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestTypeMatrixSnapshotEqualsStream writes the same edge values once
// before the slot exists (read by the snapshot) and once after (read from
// the stream), and checks the lake holds identical values for both, with
// no column lost to NULL.
func TestTypeMatrixSnapshotEqualsStream(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "types")
	pg.Exec(t, "types",
		"CREATE TYPE mood AS ENUM ('sad', 'happy')",
		"CREATE DOMAIN price AS numeric(10,2)",
		`CREATE TABLE m (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
			n numeric(12,2), nu numeric, money money, t text, vc varchar(10), ch char(3), by bytea, u uuid,
			j json, jb jsonb, d date, ts timestamp, tz timestamptz, tm time, ttz timetz, iv interval,
			ai int[], at text[], inet inet, rng int4range, mo mood, pr price, pt point)`,
		"SET TIME ZONE 'Asia/Kolkata'")
	values := `true, -32768, 2147483647, -9223372036854775808, 'NaN', '-Infinity',
		1234567890.12, '123456789012345678901234567890.123456789', '$1,234.56', E'tab\there \\\\ back', 'ünïcode', 'ab',
		'\x00ff10', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"a": [1, 2]}', '{"b": null}', '0044-03-15 BC',
		'infinity', '2024-02-29 12:34:56.789012+05:30', '24:00:00', '10:00:00-03:30', '1 year 2 mons -3 days 04:05:06.5',
		'{{1,2},{3,NULL}}', ARRAY['a,b', 'quo"te', NULL, '{}'], '192.168.0.1/24', '[1,10)', 'happy', 12.5, '(1,2)'`
	pg.Exec(t, "types", "INSERT INTO m VALUES (1, "+values+")")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "types", "INSERT INTO m VALUES (2, "+values+")")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	rows := scanRows(t, cat, "types", "public", "m")
	if len(rows) != 2 || rows[0][lakeformat.ColOp] != lakeformat.OpRead || rows[1][lakeformat.ColOp] != lakeformat.OpInsert {
		t.Fatalf("rows = %v, want a snapshot row and a streamed row", rows)
	}
	for col, v := range rows[0] {
		if col == "id" || col[0] == '_' {
			continue
		}
		if v == nil {
			t.Errorf("column %s is NULL in the lake", col)
		}
		if jsonOf(v) != jsonOf(rows[1][col]) {
			t.Errorf("column %s: snapshot %s, stream %s", col, jsonOf(v), jsonOf(rows[1][col]))
		}
	}
}
