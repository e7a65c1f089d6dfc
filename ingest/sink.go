package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
)

// Table properties cdclake keeps on a changelog table.
const (
	// PropSourceLSN is the source watermark of the table's last commit:
	// every change with a commit LSN below it is in the table.
	PropSourceLSN = "cdclake.source-lsn"
	// PropPrimaryKey is the JSON list of the source table's key columns.
	PropPrimaryKey = "cdclake.primary-key"
	// ChangesSuffix ends the name of every changelog table.
	ChangesSuffix = "__changes"
)

// changelogProps keep a changelog table's metadata small although ingest
// commits about once a second (see docs/architecture.md).
var changelogProps = iceberg.Properties{
	"commit.manifest-merge.enabled":              "true",
	"commit.manifest.min-count-to-merge":         "10",
	"write.metadata.delete-after-commit.enabled": "true",
	"write.metadata.previous-versions-max":       "10",
	"write.parquet.compression-codec":            "zstd",
	"format-version":                             "2",
}

// Hooks let tests stop a flush at its dangerous points. A hook that
// returns an error aborts the flush as a crash there would.
type Hooks struct {
	// AfterUpload runs when a table's files are written but not committed.
	AfterUpload func(table string) error
	// AfterTableCommit runs after each table commit, before the watermark.
	AfterTableCommit func(table string) error
	// AfterWatermark runs after the watermark is committed, before the ack.
	AfterWatermark func(lsn uint64) error
}

// sink commits batches of one source into the lake.
type sink struct {
	cat     *catalog.Catalog
	source  string
	hooks   Hooks
	log     *slog.Logger
	tables  map[string]*table.Table
	pending map[string]*table.Transaction // open transactions, by schema.table
}

func newSink(cat *catalog.Catalog, source string, hooks Hooks, log *slog.Logger) *sink {
	return &sink{cat: cat, source: source, hooks: hooks, log: log,
		tables: map[string]*table.Table{}, pending: map[string]*table.Transaction{}}
}

// Ident returns the Iceberg identifier of a source table's changelog.
func Ident(source, schema, name string) table.Identifier {
	return table.Identifier{source, schema, name + ChangesSuffix}
}

// committedLSN returns the source watermark of a changelog table's last
// commit, 0 when the table does not exist yet.
func (s *sink) committedLSN(ctx context.Context, schema, name string) (uint64, error) {
	tbl, err := s.cat.Iceberg().LoadTable(ctx, Ident(s.source, schema, name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load %s.%s: %w", schema, name, err)
	}
	s.tables[schema+"."+name] = tbl
	return tableLSN(tbl), nil
}

func tableLSN(tbl *table.Table) uint64 {
	v, _ := strconv.ParseUint(tbl.Properties()[PropSourceLSN], 10, 64)
	return v
}

// commit writes a batch: each table's rows in one Iceberg commit, then
// the source watermark. A partial batch (part of a large transaction) is
// only written; the batch that ends the transaction commits it.
func (s *sink) commit(ctx context.Context, b *batch) error {
	for _, tb := range b.tables {
		key := tb.schema + "." + tb.name
		if p := s.pending[key]; p != nil || b.partial {
			// a large transaction's tables: no retry, a failure replays it
			if err := s.stage(ctx, tb, b.endLSN); err != nil {
				delete(s.pending, key)
				return fmt.Errorf("write %s: %w", key, err)
			}
			continue
		}
		if err := s.commitTable(ctx, tb, b.endLSN); err != nil {
			return err
		}
	}
	if b.partial {
		return nil
	}
	for key := range s.pending {
		err := s.finish(ctx, key, b.endLSN)
		delete(s.pending, key)
		if err != nil {
			return fmt.Errorf("commit %s: %w", key, err)
		}
	}
	if err := s.cat.SetWatermark(ctx, s.source, b.endLSN, b.commitTime); err != nil {
		return err
	}
	if s.hooks.AfterWatermark != nil {
		return s.hooks.AfterWatermark(b.endLSN)
	}
	return nil
}

// commitTable commits one table's rows, retrying when another writer
// (compaction) committed to the table first.
func (s *sink) commitTable(ctx context.Context, tb tableBatch, lsn uint64) error {
	key := tb.schema + "." + tb.name
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
			delete(s.tables, key) // reload
		}
		if err = s.stage(ctx, tb, lsn); err == nil {
			err = s.finish(ctx, key, lsn)
		}
		delete(s.pending, key)
		if err == nil || !retryable(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	return nil
}

// stage appends a table's parts to its open transaction, opening one
// (and creating the table) when needed, and evolving the schema first.
func (s *sink) stage(ctx context.Context, tb tableBatch, lsn uint64) error {
	key := tb.schema + "." + tb.name
	tx := s.pending[key]
	if tx == nil {
		tbl, err := s.table(ctx, tb)
		if err != nil {
			return err
		}
		tx = tbl.NewTransaction()
		s.pending[key] = tx
	}
	props := iceberg.Properties{PropSourceLSN: strconv.FormatUint(lsn, 10)}
	for _, part := range tb.parts {
		rec, err := evolve(tx, part, s.log)
		if err != nil {
			return fmt.Errorf("evolve schema: %w", err)
		}
		at := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
		err = tx.AppendTable(ctx, at, max(rec.NumRows(), 1), props)
		at.Release()
		if err != nil {
			return fmt.Errorf("write files: %w", err)
		}
	}
	return nil
}

// finish commits a table's open transaction with its new watermark.
func (s *sink) finish(ctx context.Context, key string, lsn uint64) error {
	tx := s.pending[key]
	st, err := tx.StagedTable()
	if err != nil {
		return err
	}
	if tableLSN(st.Table) > lsn {
		return nil // committed before, by an earlier attempt
	}
	if err := tx.SetProperties(iceberg.Properties{PropSourceLSN: strconv.FormatUint(lsn, 10)}); err != nil {
		return err
	}
	if s.hooks.AfterUpload != nil {
		if err := s.hooks.AfterUpload(key); err != nil {
			return err
		}
	}
	nt, err := tx.Commit(ctx)
	if err != nil {
		delete(s.tables, key)
		return err
	}
	s.tables[key] = nt
	if s.hooks.AfterTableCommit != nil {
		return s.hooks.AfterTableCommit(key)
	}
	return nil
}

// retryable reports whether a commit lost a race with another writer.
// The SQL catalog reports most conflicts as plain errors (ICEBERG-GO.md).
func retryable(err error) bool {
	if errors.Is(err, table.ErrCommitFailed) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "has changed") || strings.Contains(msg, "concurrently") ||
		strings.Contains(msg, "database is locked")
}

// table loads or creates the changelog table for tb and adds columns its
// parts have that the table lacks.
func (s *sink) table(ctx context.Context, tb tableBatch) (*table.Table, error) {
	key := tb.schema + "." + tb.name
	tbl := s.tables[key]
	if tbl == nil {
		ident := Ident(s.source, tb.schema, tb.name)
		var err error
		tbl, err = s.cat.Iceberg().LoadTable(ctx, ident)
		if errors.Is(err, icecat.ErrNoSuchTable) {
			tbl, err = s.create(ctx, ident, tb)
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", key, err)
		}
		s.tables[key] = tbl
	}
	return tbl, nil
}

func (s *sink) create(ctx context.Context, ident table.Identifier, tb tableBatch) (*table.Table, error) {
	ns := ident[:len(ident)-1]
	if err := s.cat.Iceberg().CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, icecat.ErrNamespaceAlreadyExists) {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(tb.parts[0].Schema(), false)
	if err != nil {
		return nil, fmt.Errorf("convert schema: %w", err)
	}
	ts, ok := sc.FindFieldByName(ColCommitTS)
	if !ok {
		return nil, fmt.Errorf("schema lacks %s", ColCommitTS)
	}
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{
		SourceIDs: []int{ts.ID}, FieldID: 1000, Name: ColCommitTS + "_hour", Transform: iceberg.HourTransform{},
	})
	props := iceberg.Properties{}
	for k, v := range changelogProps {
		props[k] = v
	}
	keys, _ := json.Marshal(tb.keys)
	props[PropPrimaryKey] = string(keys)
	tbl, err := s.cat.Iceberg().CreateTable(ctx, ident, sc, icecat.WithPartitionSpec(&spec), icecat.WithProperties(props))
	if errors.Is(err, icecat.ErrTableAlreadyExists) {
		return s.cat.Iceberg().LoadTable(ctx, ident)
	}
	return tbl, err
}
