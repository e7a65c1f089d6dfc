// Package changegen writes synthetic changelogs as ingest writes them,
// for benchmarks and tests: orders(id bigint key, customer_id int, status
// text, amount numeric(12,2), created_at timestamptz, note text) with the
// changelog's metadata columns, committed straight to a folder lake.
package changegen

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// Columns are the orders table's columns, key first.
var Columns = []string{"id", "customer_id", "status", "amount", "created_at", "note"}

// Schema is the Arrow schema of the orders changelog.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "customer_id", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 12, Scale: 2}, Nullable: true},
	{Name: "created_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: lakeformat.ColOp, Type: arrow.BinaryTypes.String},
	{Name: lakeformat.ColLSN, Type: arrow.PrimitiveTypes.Int64},
	{Name: lakeformat.ColSeq, Type: arrow.PrimitiveTypes.Int64},
	{Name: lakeformat.ColXID, Type: arrow.PrimitiveTypes.Int64},
	{Name: lakeformat.ColCommitTS, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: lakeformat.ColUnchanged, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
}, nil)

// Gen generates changelog rows: its random source, the LSN and commit
// time of the last transaction and the next new key.
type Gen struct {
	Rng  *rand.Rand
	LSN  int64
	Next int64 // next new key
	Hour time.Time
	// PerCommit is the number of rows Append commits at a time, in one
	// file each (default 1M).
	PerCommit int64
}

// New returns a generator seeded with seed whose next new key is next.
func New(seed, next int64) *Gen {
	return &Gen{Rng: rand.New(rand.NewSource(seed)), LSN: 1000, Next: next}
}

// CreateChangelog creates the changelog table ident as ingest does.
func (g *Gen) CreateChangelog(ctx context.Context, cat *catalog.Catalog, ident table.Identifier) (*table.Table, error) {
	if err := cat.Iceberg().CreateNamespace(ctx, ident[:2], nil); err != nil {
		return nil, err
	}
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(Schema, false)
	if err != nil {
		return nil, err
	}
	ts, _ := sc.FindFieldByName(lakeformat.ColCommitTS)
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{ts.ID}, FieldID: 1000,
		Name: lakeformat.ColCommitTS + "_hour", Transform: iceberg.HourTransform{}})
	keys, _ := json.Marshal([]string{"id"})
	props := iceberg.Properties{lakeformat.PropPrimaryKey: string(keys), // as ingest's changelogProps (ingest/sink.go)
		"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "10",
		"write.metadata.delete-after-commit.enabled": "true", "write.metadata.previous-versions-max": "10",
		"write.parquet.compression-codec": "zstd", "format-version": "2"}
	g.Hour = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return cat.Iceberg().CreateTable(ctx, ident, sc, icecat.WithPartitionSpec(&spec), icecat.WithProperties(props))
}

// Builder appends changelog rows to a record batch.
type Builder struct {
	g   *Gen
	b   *array.RecordBuilder
	seq int64
	ts  arrow.Timestamp
}

// Builder returns a builder of a new batch.
func (g *Gen) Builder() *Builder {
	return &Builder{g: g, b: array.NewRecordBuilder(memory.DefaultAllocator, Schema)}
}

// Begin starts a transaction: the next LSN, one second later.
func (b *Builder) Begin() {
	b.g.LSN += 1000
	b.seq = 0
	b.g.Hour = b.g.Hour.Add(time.Second)
	b.ts = arrow.Timestamp(b.g.Hour.UnixMicro())
}

// Record returns the rows appended and releases the builder.
func (b *Builder) Record() arrow.RecordBatch {
	rec := b.b.NewRecordBatch()
	b.b.Release()
	return rec
}

func (b *Builder) meta(op string, unsent []string) {
	b.b.Field(6).(*array.StringBuilder).Append(op)
	b.b.Field(7).(*array.Int64Builder).Append(b.g.LSN)
	b.b.Field(8).(*array.Int64Builder).Append(b.seq)
	b.b.Field(9).(*array.Int64Builder).Append(b.g.LSN / 100)
	b.b.Field(10).(*array.TimestampBuilder).Append(b.ts)
	lb := b.b.Field(11).(*array.ListBuilder)
	if len(unsent) == 0 {
		lb.AppendNull()
	} else {
		lb.Append(true)
		for _, u := range unsent {
			lb.ValueBuilder().(*array.StringBuilder).Append(u)
		}
	}
	b.seq++
}

var statuses = []string{"placed", "paid", "shipped", "delivered", "cancelled"}

// Row appends a full row of key id with operation op ("r", "c", "u").
func (b *Builder) Row(op string, id int64) {
	g := b.g
	b.b.Field(0).(*array.Int64Builder).Append(id)
	b.b.Field(1).(*array.Int32Builder).Append(int32(id % 100_000))
	b.b.Field(2).(*array.StringBuilder).Append(statuses[g.Rng.Intn(len(statuses))])
	b.b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(g.Rng.Int63n(10_000_000)))
	b.b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(1767225600_000000 + id*1_000_000))
	var note [16]byte
	g.Rng.Read(note[:])
	b.b.Field(5).(*array.StringBuilder).Append(hex.EncodeToString(note[:]))
	b.meta(op, nil)
}

// DeleteKey appends a key-only delete.
func (b *Builder) DeleteKey(id int64) {
	b.b.Field(0).(*array.Int64Builder).Append(id)
	for i := 1; i <= 5; i++ {
		b.b.Field(i).AppendNull()
	}
	b.meta("d", Columns[1:])
}

// Append commits n rows made by add, 1,000 per transaction, g.PerCommit
// per commit, and returns the table after the last commit.
func (g *Gen) Append(ctx context.Context, tbl *table.Table, n int64, add func(b *Builder, i int64)) (*table.Table, error) {
	const perTxn = 1000
	perCommit := g.PerCommit
	if perCommit <= 0 {
		perCommit = 1_000_000
	}
	for done := int64(0); done < n; {
		b := g.Builder()
		end := min(n, done+perCommit)
		for i := done; i < end; i++ {
			if (i-done)%perTxn == 0 {
				b.Begin()
			}
			add(b, i)
		}
		rec := b.Record()
		at := array.NewTableFromRecords(Schema, []arrow.RecordBatch{rec})
		tx := tbl.NewTransaction()
		err := tx.AppendTable(ctx, at, 128<<10, nil)
		if err == nil {
			err = tx.SetProperties(iceberg.Properties{lakeformat.PropSourceLSN: strconv.FormatInt(g.LSN+1, 10)})
		}
		if err == nil {
			tbl, err = tx.Commit(ctx)
		}
		at.Release()
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("append changes: %w", err)
		}
		done = end
	}
	return tbl, nil
}

// Lake opens a folder lake in dir, or in a new temporary folder named
// with prefix that done removes, and returns the folder.
func Lake(ctx context.Context, dir, prefix string) (cat *catalog.Catalog, folder string, done func(), err error) {
	cleanup := func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", prefix); err != nil {
			return nil, "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	cat, err = catalog.Open(ctx, catalog.Options{URL: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "lake")})
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return cat, dir, func() { cat.Close(); cleanup() }, nil
}
