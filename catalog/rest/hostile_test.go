package rest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestHostileNames ingests tables whose names try to escape the lake, and
// checks that ingest stores every one, that the API names them right and
// that every object stays under the lake root. Each table has its own
// source, so a name ingest refuses fails its own subtest only.
func TestHostileNames(t *testing.T) {
	f := newLake(t)
	ts := f.server(t, Options{})
	names := []string{"../x", "a/b", "%2e%2e", "..", "été", strings.Repeat("é", 31) + "x", `quo"te`, "a b?#"}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			db := fmt.Sprintf("h%d", i)
			quoted := pgx.Identifier{name}.Sanitize()
			src := f.source(t, db, "CREATE TABLE "+quoted+" (id int PRIMARY KEY, val text)")
			f.pg.Exec(t, db, "INSERT INTO "+quoted+" SELECT g, 'v' || g FROM generate_series(1, 20) g")
			// iceberg-go refuses "/" in identifiers: lakeformat.ChangelogIdent encodes every
			// name (lakeformat.IdentPart) and places its table with
			// catalog.TableLocation, so every name is stored
			if err := f.ingest(src); err != nil {
				t.Fatalf("ingest of table %q: %v", name, err)
			}
			checkHostile(t, f, ts, TableRef{Source: db, Schema: "public", Table: name}, 20)
		})
	}
}

// checkHostile checks the API's answers about a table with a hostile name,
// and that every object it names is under the lake root.
func checkHostile(t *testing.T, f *lakeFixture, ts *httptest.Server, ref TableRef, rows int64) {
	t.Helper()
	var list struct{ Tables []Table }
	get(t, ts, "", "/v1/tables?source="+ref.Source, http.StatusOK, &list)
	if len(list.Tables) != 1 || list.Tables[0].Name != ref.Table || list.Tables[0].Changelog == nil {
		t.Fatalf("tables of %s: %+v", ref.Source, list.Tables)
	}
	cl := list.Tables[0].Changelog
	if !underRoot(f.lakeDir, cl.Location+"/x") || !underRoot(f.lakeDir, cl.MetadataLocation) {
		t.Errorf("table location %s, metadata %s: outside the lake %s", cl.Location, cl.MetadataLocation, f.lakeDir)
	}
	var one Table
	get(t, ts, "", TablePath(ref), http.StatusOK, &one)
	if one.Name != ref.Table || one.Changelog.Rows != rows {
		t.Errorf("table %+v", one)
	}
	get(t, ts, "", TablePath(ref)+"/schema", http.StatusOK, nil)
	var parts struct{ Partitions []Partition }
	get(t, ts, "", TablePath(ref)+"/partitions", http.StatusOK, &parts)
	if len(parts.Partitions) == 0 {
		t.Fatal("no partitions")
	}
	for _, p := range parts.Partitions {
		var m Manifest
		get(t, ts, "", p.Manifest, http.StatusOK, &m)
		if m.Table != ref.Table {
			t.Errorf("manifest names table %q", m.Table)
		}
		for _, fl := range m.Files {
			if !underRoot(f.lakeDir, fl.URL) || fl.Key == nil || fl.Download == nil || fl.Checksum == nil {
				t.Errorf("file %+v: outside the lake %s", fl, f.lakeDir)
				continue
			}
			data := download(t, ts, "", *fl.Download)
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != *fl.Checksum {
				t.Errorf("%s: checksum mismatch", *fl.Key)
			}
		}
	}
	// the Iceberg REST side finds it under its lake identifier
	id := cl.Identifier
	var lt struct {
		MetadataLocation string `json:"metadata-location"`
	}
	get(t, ts, "", "/iceberg/v1/namespaces/"+escapeSegment(id[0])+"%1F"+escapeSegment(id[1])+"/tables/"+escapeSegment(id[2]), http.StatusOK, &lt)
	if lt.MetadataLocation != cl.MetadataLocation {
		t.Errorf("Iceberg REST metadata-location %q, want %q", lt.MetadataLocation, cl.MetadataLocation)
	}
	if base, _ := strings.CutSuffix(id[2], lakeformat.ChangesSuffix); lakeformat.NamePart(base) != ref.Table {
		t.Errorf("identifier %q does not decode to %q", id[2], ref.Table)
	}
}

// TestEncodedNames writes changelog tables the way ingest does, with
// encoded names (lakeformat.IdentPart for identifiers, catalog.TableLocation
// for locations), including the names iceberg-go refuses raw, and checks
// the API on them.
func TestEncodedNames(t *testing.T) {
	f := newLake(t)
	ts := f.server(t, Options{})
	ctx := context.Background()
	for i, name := range []string{"../x", "a/b", "%2e%2e", "..", "a%2Fb", "~t", "été"} {
		t.Run(name, func(t *testing.T) {
			src := fmt.Sprintf("e%d", i)
			if err := f.cat.PutSource(ctx, catalog.Source{Name: src, Slot: "s", Publication: "p", LSN: 100, CommitTime: time.Now()}); err != nil {
				t.Fatal(err)
			}
			id := table.Identifier{lakeformat.IdentPart(src), lakeformat.IdentPart("public"), lakeformat.IdentPart(name + lakeformat.ChangesSuffix)}
			if err := f.cat.Iceberg().CreateNamespace(ctx, id[:2], nil); err != nil {
				t.Fatal(err)
			}
			writeChangelog(t, f, id, 7, nil)
			checkHostile(t, f, ts, TableRef{Source: src, Schema: "public", Table: name}, 7)
		})
	}
}

// writeChangelog creates a changelog table as ingest does, at its encoded
// location, and appends n rows.
func writeChangelog(t *testing.T, f *lakeFixture, id table.Identifier, n int, props iceberg.Properties) {
	t.Helper()
	ctx := context.Background()
	mem := memory.DefaultAllocator
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: lakeformat.ColOp, Type: arrow.BinaryTypes.String},
		{Name: lakeformat.ColLSN, Type: arrow.PrimitiveTypes.Int64},
		{Name: lakeformat.ColCommitTS, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		b.Field(0).(*array.Int32Builder).Append(int32(i))
		b.Field(1).(*array.StringBuilder).Append(lakeformat.OpInsert)
		b.Field(2).(*array.Int64Builder).Append(int64(50 + i))
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(now.UnixMicro()))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, false)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := isc.FindFieldByName(lakeformat.ColCommitTS)
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{ts.ID}, FieldID: 1000,
		Name: lakeformat.ColCommitTS + "_hour", Transform: iceberg.HourTransform{}})
	tbl, err := f.cat.Iceberg().CreateTable(ctx, id, isc, icecat.WithPartitionSpec(&spec),
		icecat.WithLocation(catalog.TableLocation(f.loc.URL(), id)), icecat.WithProperties(props))
	if err != nil {
		t.Fatal(err)
	}
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, int64(n), iceberg.Properties{lakeformat.PropSourceLSN: "100"}); err != nil {
		t.Fatal(err)
	}
}

// writeSnapshotTable creates the snapshot table of shop.public.orders as
// compaction does, with three rows at watermark lsn.
func writeSnapshotTable(t *testing.T, f *lakeFixture, lsn uint64) {
	t.Helper()
	ctx := context.Background()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: lakeformat.ColLSN, Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Int32Builder).AppendValues([]int32{1, 2, 3}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{7, 8, 9}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, false)
	if err != nil {
		t.Fatal(err)
	}
	props := iceberg.Properties{lakeformat.PropSourceLSN: strconv.FormatUint(lsn, 10)}
	tbl, err := f.cat.Iceberg().CreateTable(ctx, table.Identifier{"shop", "public", "orders"}, isc, icecat.WithProperties(props))
	if err != nil {
		t.Fatal(err)
	}
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	if _, err := tbl.AppendTable(ctx, at, 3, props); err != nil {
		t.Fatal(err)
	}
}

// TestLSNFromFooter checks that files without column bounds get their LSN
// range from the Parquet footer.
func TestLSNFromFooter(t *testing.T) {
	f := newLake(t)
	ts := f.server(t, Options{})
	ctx := context.Background()
	if err := f.cat.PutSource(ctx, catalog.Source{Name: "nb", Slot: "s", Publication: "p", LSN: 100}); err != nil {
		t.Fatal(err)
	}
	id := table.Identifier{"nb", "public", "t" + lakeformat.ChangesSuffix}
	if err := f.cat.Iceberg().CreateNamespace(ctx, id[:2], nil); err != nil {
		t.Fatal(err)
	}
	writeChangelog(t, f, id, 7, iceberg.Properties{table.DefaultWriteMetricsModeKey: "none"})
	tbl, err := f.cat.Iceberg().LoadTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil || len(tasks) == 0 {
		t.Fatalf("tasks %v, %v", tasks, err)
	}
	for _, task := range tasks {
		if len(task.File.LowerBoundValues()) > 0 {
			t.Fatalf("the file has column bounds; the test needs a file without")
		}
	}
	var parts struct{ Partitions []Partition }
	get(t, ts, "", "/v1/tables/nb/public/t/partitions", http.StatusOK, &parts)
	var m Manifest
	get(t, ts, "", parts.Partitions[0].Manifest, http.StatusOK, &m)
	for _, fl := range m.Files {
		if fl.MinLSN == nil || *fl.MinLSN != 50 || fl.MaxLSN == nil || *fl.MaxLSN != 56 {
			t.Errorf("file LSNs %v..%v, want 50..56", fl.MinLSN, fl.MaxLSN)
		}
	}
}
