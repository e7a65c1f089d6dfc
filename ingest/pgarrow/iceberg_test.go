package pgarrow

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// everyColumn returns a Column for every built-in OID and for the
// numeric typmods that change the Arrow type, so every Arrow type this
// package can return is among them.
func everyColumn(t testing.TB) []*Column {
	oids := make([]uint32, 0, len(builtins))
	for oid := range builtins {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	var cols []*Column
	for _, oid := range oids {
		cols = append(cols, mustColumn(t, oid, -1))
	}
	for _, mod := range []int32{numericMod(1, 0), numericMod(9, 2), numericMod(18, 4), numericMod(19, 0),
		numericMod(38, 0), numericMod(38, 38), numericMod(3, -2), numericMod(3, 5), numericMod(39, 0)} {
		cols = append(cols, mustColumn(t, oidNumeric, mod), mustColumn(t, 1231, mod))
	}
	return cols
}

// withFieldIDs returns s with PARQUET:field_id metadata on every field
// and list element, numbered depth-first from 1.
func withFieldIDs(s *arrow.Schema) *arrow.Schema {
	id := 0
	var tag func(f arrow.Field) arrow.Field
	tag = func(f arrow.Field) arrow.Field {
		id++
		f.Metadata = arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{strconv.Itoa(id)})
		if lt, ok := f.Type.(*arrow.ListType); ok {
			f.Type = arrow.ListOfField(tag(lt.ElemField()))
		}
		return f
	}
	fields := make([]arrow.Field, len(s.Fields()))
	for i, f := range s.Fields() {
		fields[i] = tag(f)
	}
	return arrow.NewSchema(fields, nil)
}

func TestIcebergSchemaConversion(t *testing.T) {
	cols := everyColumn(t)
	fields := make([]arrow.Field, len(cols))
	seen := map[string]bool{}
	for i, c := range cols {
		fields[i] = c.Field("c" + strconv.Itoa(i))
		seen[c.ArrowType().String()] = true
		one := withFieldIDs(arrow.NewSchema([]arrow.Field{fields[i]}, nil))
		if _, err := table.ArrowSchemaToIceberg(one, false, nil); err != nil {
			t.Errorf("%s (%s): %v", c.PGType(), c.ArrowType(), err)
		}
	}
	sc := arrow.NewSchema(fields, nil)
	if _, err := table.ArrowSchemaToIceberg(withFieldIDs(sc), false, nil); err != nil {
		t.Fatalf("ArrowSchemaToIceberg: %v", err)
	}
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, false)
	if err != nil {
		t.Fatalf("ArrowSchemaToIcebergWithFreshIDs: %v", err)
	}
	for _, f := range isc.Fields() {
		if d, ok := f.Type.(iceberg.DecimalType); ok && d.Precision() > 38 {
			t.Errorf("%s: %s", f.Name, d)
		}
	}
	types := make([]string, 0, len(seen))
	for s := range seen {
		types = append(types, s)
	}
	sort.Strings(types)
	t.Logf("%d columns, Arrow types: %q", len(cols), types)
}

// icebergRoundTrip writes rec to a fresh Iceberg table (SQL catalog on
// SQLite, Parquet data files) and reads it back.
func icebergRoundTrip(t *testing.T, rec arrow.RecordBatch) arrow.Table {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Load(ctx, "test", iceberg.Properties{
		"type":            "sql",
		"uri":             "file:" + filepath.Join(dir, "catalog.db"),
		sqlcat.DriverKey:  sqliteshim.ShimName,
		sqlcat.DialectKey: "sqlite",
		"warehouse":       "file://" + filepath.Join(dir, "lake"),
	})
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(rec.Schema(), false)
	if err != nil {
		t.Fatalf("convert schema: %v", err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{"pg"}, nil); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	tbl, err := cat.CreateTable(ctx, table.Identifier{"pg", "types"}, isc)
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	at := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
	defer at.Release()
	tbl, err = tbl.AppendTable(ctx, at, 1024, nil)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	out, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	t.Cleanup(out.Release)
	return out
}

// tableCells renders every cell of an Arrow table with valueString,
// column by column.
func tableCells(tb arrow.Table) [][]string {
	out := make([][]string, tb.NumCols())
	for i := range out {
		for _, chunk := range tb.Column(i).Data().Chunks() {
			for j := 0; j < chunk.Len(); j++ {
				out[i] = append(out[i], render(chunk, j, true))
			}
		}
	}
	return out
}

func recordCells(rec arrow.RecordBatch) [][]string {
	out := make([][]string, rec.NumCols())
	for i := range out {
		col := rec.Column(i)
		for j := 0; j < col.Len(); j++ {
			out[i] = append(out[i], render(col, j, true))
		}
	}
	return out
}

// TestIcebergWrite writes edge values of every Arrow type through
// iceberg-go's Parquet writer and reads them back unchanged.
func TestIcebergWrite(t *testing.T) {
	type colVals struct {
		oid  uint32
		mod  int32
		vals []string // "\x00" is NULL
	}
	cols := []colVals{
		{oidBool, -1, []string{"t", "f", "\x00"}},
		{oidInt2, -1, []string{"-32768", "32767", "\x00"}},
		{oidInt4, -1, []string{"-2147483648", "2147483647", "\x00"}},
		{oidInt8, -1, []string{"-9223372036854775808", "9223372036854775807", "\x00"}},
		{oidOID, -1, []string{"0", "4294967295", "\x00"}},
		{oidFloat4, -1, []string{"NaN", "-Infinity", "\x00"}},
		{oidFloat8, -1, []string{"Infinity", "-1.5e-300", "\x00"}},
		{oidNumeric, numericMod(38, 0), []string{"-99999999999999999999999999999999999999", "99999999999999999999999999999999999999", "\x00"}},
		{oidNumeric, numericMod(12, 2), []string{"-1234567890.12", "0.01", "NaN"}},
		{oidNumeric, numericMod(3, 5), []string{"0.00123", "-0.00999", "\x00"}},
		{oidNumeric, -1, []string{"NaN", "1.0000000000000000000000000000000000000000001", "\x00"}},
		{oidMoney, -1, []string{"-$92,233,720,368,547,758.08", "$92,233,720,368,547,758.07", "\x00"}},
		{oidText, -1, []string{"", "ünïcødé", "\x00"}},
		{oidBytea, -1, []string{`\x`, `\x00ff`, "\x00"}},
		{oidUUID, -1, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000", "\x00"}},
		{oidDate, -1, []string{"infinity", "-infinity", "4714-11-24 BC"}},
		{oidTimestamp, -1, []string{"infinity", "-infinity", "294000-01-01 00:00:00"}},
		{oidTimestampTZ, -1, []string{"4713-11-24 00:00:00+00 BC", "infinity", "-infinity"}},
		{oidTime, -1, []string{"24:00:00", "00:00:00", "\x00"}},
		{oidInterval, -1, []string{"-1 years -2 mons +3 days -04:05:06.000001", "00:00:00", "\x00"}},
		{1007, -1, []string{"{}", "{{1,2},{3,NULL}}", "\x00"}},
		{1009, -1, []string{`{"a,b",NULL,""}`, "{}", "\x00"}},
		{1231, numericMod(10, 3), []string{"{1.5,NaN}", "{}", "\x00"}},
		{1185, -1, []string{"{infinity,\"1970-01-01 00:00:00+00\"}", "{NULL}", "\x00"}},
		{1001, -1, []string{`{"\\x00"}`, "{}", "\x00"}},
		{1000, -1, []string{"{t,f}", "{}", "\x00"}},
		{1182, -1, []string{"{infinity}", "{}", "\x00"}},
		{1022, -1, []string{"{NaN,Infinity}", "{}", "\x00"}},
		{791, -1, []string{"{$1.00}", "{}", "\x00"}},
		{1183, -1, []string{"{12:00:00}", "{}", "\x00"}},
		{1115, -1, []string{`{"2024-01-01 00:00:00"}`, "{}", "\x00"}},
	}
	fields := make([]arrow.Field, len(cols))
	decoders := make([]*Column, len(cols))
	for i, cv := range cols {
		decoders[i] = mustColumn(t, cv.oid, cv.mod)
		fields[i] = decoders[i].Field("c" + strconv.Itoa(i))
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer rb.Release()
	for i, cv := range cols {
		for _, v := range cv.vals {
			var text []byte
			if v != "\x00" {
				text = []byte(v)
			}
			if err := decoders[i].Append(rb.Field(i), text); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	want := recordCells(rec)
	got := tableCells(icebergRoundTrip(t, rec))
	for i := range want {
		for j := range want[i] {
			if j >= len(got[i]) || got[i][j] != want[i][j] {
				t.Errorf("%s row %d: read back %q, wrote %q", decoders[i].PGType(), j, got[i], want[i][j])
				break
			}
		}
	}
}
