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
	"github.com/apache/arrow-go/v18/arrow/memory"
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
	// PropPGTypes is the JSON object of the source columns' PostgreSQL types.
	PropPGTypes = "cdclake.pg-types"
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
	"write.parquet.compression-level":            "1", // fresh files are rewritten by compaction
	// unique: a dictionary would only cost hashing
	"write.parquet.dict-encoding-enabled.column." + ColSeq: "false",
	"format-version": "2",
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
	pending map[string]*pendingTx // open transactions, by schema.table
}

func newSink(cat *catalog.Catalog, source string, hooks Hooks, log *slog.Logger) *sink {
	return &sink{cat: cat, source: source, hooks: hooks, log: log,
		tables: map[string]*table.Table{}, pending: map[string]*pendingTx{}}
}

// Ident returns the Iceberg identifier of a source table's changelog.
// Names are encoded (catalog.IdentPart) so any PostgreSQL name is a valid
// identifier level.
func Ident(source, schema, name string) table.Identifier {
	return table.Identifier{catalog.IdentPart(source), catalog.IdentPart(schema), catalog.IdentPart(name + ChangesSuffix)}
}

// committedLSN returns the source watermark of a changelog table's last
// commit, and whether the table exists. It runs beside the flusher, so it
// leaves the sink's state alone.
func (s *sink) committedLSN(ctx context.Context, schema, name string) (uint64, bool, error) {
	tbl, err := s.cat.Iceberg().LoadTable(ctx, Ident(s.source, schema, name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("load %s.%s: %w", schema, name, err)
	}
	return tableLSN(tbl), true, nil
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
		if err := s.commitPending(ctx, key, b.endLSN, true); err != nil {
			return err
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
			err = s.finish(ctx, key, lsn, true)
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
	p, err := s.open(ctx, tb)
	if err != nil {
		return err
	}
	tx := p.tx
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

// open returns a table's open transaction, opening one (and creating the
// table) when needed.
func (s *sink) open(ctx context.Context, tb tableBatch) (*pendingTx, error) {
	key := tb.schema + "." + tb.name
	p := s.pending[key]
	if p == nil {
		tbl, err := s.table(ctx, tb)
		if err != nil {
			return nil, err
		}
		p = &pendingTx{tx: tbl.NewTransaction(), base: tbl}
		s.pending[key] = p
	}
	if tb.pgTypes != "" {
		p.pgTypes = tb.pgTypes
	}
	return p, nil
}

// prepare opens a table's transaction and evolves its schema to the
// columns of sc, for files written outside the transaction (a snapshot's
// workers): it returns the staged table to write them against and the
// schema (with lake column names) to write them with.
func (s *sink) prepare(ctx context.Context, tb tableBatch, sc *arrow.Schema) (*table.Table, *arrow.Schema, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	empty := b.NewRecordBatch()
	b.Release()
	defer empty.Release()
	tb.parts = []arrow.RecordBatch{empty}
	p, err := s.open(ctx, tb)
	if err != nil {
		return nil, nil, err
	}
	rec, err := evolve(p.tx, empty, s.log)
	if err != nil {
		return nil, nil, fmt.Errorf("evolve schema: %w", err)
	}
	st, err := p.tx.StagedTable()
	if err != nil {
		return nil, nil, err
	}
	return st.Table, rec.Schema(), nil
}

// addFiles adds data files written against prepare's staged table to the
// table's open transaction.
func (s *sink) addFiles(ctx context.Context, key string, files []iceberg.DataFile, lsn uint64) error {
	if len(files) == 0 {
		return nil
	}
	props := iceberg.Properties{PropSourceLSN: strconv.FormatUint(lsn, 10)}
	if err := s.pending[key].tx.AddDataFiles(ctx, files, props); err != nil {
		return fmt.Errorf("add written files: %w", err)
	}
	return nil
}

// pendingTx is a table's open transaction and the table it started from.
type pendingTx struct {
	tx      *table.Transaction
	base    *table.Table
	pgTypes string // PostgreSQL types of the columns last staged
}

// commitPending commits a table's open transaction. When another writer
// committed first, the files already written are committed again on top
// of the new table state.
func (s *sink) commitPending(ctx context.Context, key string, lsn uint64, setLSN bool) error {
	defer delete(s.pending, key)
	err := s.finish(ctx, key, lsn, setLSN)
	for attempt := 1; err != nil && retryable(err) && attempt < 5; attempt++ {
		time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		var p *pendingTx
		if p, err = s.restage(ctx, key); err == nil {
			s.pending[key] = p
			err = s.finish(ctx, key, lsn, setLSN)
		}
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	return nil
}

// restage starts a transaction on the table's current state that adds the
// data files the pending transaction wrote.
func (s *sink) restage(ctx context.Context, key string) (*pendingTx, error) {
	p := s.pending[key]
	staged, err := p.tx.StagedTable()
	if err != nil {
		return nil, err
	}
	fs, err := staged.FS(ctx)
	if err != nil {
		return nil, err
	}
	old := map[int64]bool{}
	for _, snap := range p.base.Metadata().Snapshots() {
		old[snap.SnapshotID] = true
	}
	manifests, err := staged.CurrentSnapshot().Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("read staged manifests: %w", err)
	}
	var files []iceberg.DataFile
	for _, m := range manifests {
		if old[m.SnapshotID()] {
			continue
		}
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return nil, fmt.Errorf("read staged manifest: %w", err)
		}
		for _, e := range entries {
			if e.Status() == iceberg.EntryStatusADDED {
				files = append(files, e.DataFile())
			}
		}
	}
	delete(s.tables, key)
	tbl, err := s.cat.Iceberg().LoadTable(ctx, p.base.Identifier())
	if err != nil {
		return nil, err
	}
	np := &pendingTx{tx: tbl.NewTransaction(), base: tbl, pgTypes: p.pgTypes}
	if staged.Schema().ID != tbl.Schema().ID {
		return nil, fmt.Errorf("schema changed under a concurrent commit: %w", table.ErrCommitFailed)
	}
	if err := np.tx.AddDataFiles(ctx, files, nil); err != nil {
		return nil, fmt.Errorf("add written files: %w", err)
	}
	return np, nil
}

// finish commits a table's open transaction; with setLSN it records lsn
// as the table's watermark (skipping a commit an earlier attempt made).
func (s *sink) finish(ctx context.Context, key string, lsn uint64, setLSN bool) error {
	tx := s.pending[key].tx
	st, err := tx.StagedTable()
	if err != nil {
		return err
	}
	props := iceberg.Properties{}
	if setLSN {
		if tableLSN(st.Table) > lsn {
			return nil // committed before, by an earlier attempt
		}
		props[PropSourceLSN] = strconv.FormatUint(lsn, 10)
	}
	if p := s.pending[key].pgTypes; p != "" && st.Properties()[PropPGTypes] != p {
		props[PropPGTypes] = p
	}
	if len(props) > 0 {
		if err := tx.SetProperties(props); err != nil {
			return err
		}
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
	// the location is built from encoded names, so none can leave the lake
	loc := catalog.TableLocation(s.cat.Warehouse(), ident)
	tbl, err := s.cat.Iceberg().CreateTable(ctx, ident, sc, icecat.WithPartitionSpec(&spec), icecat.WithProperties(props), icecat.WithLocation(loc))
	if errors.Is(err, icecat.ErrTableAlreadyExists) {
		return s.cat.Iceberg().LoadTable(ctx, ident)
	}
	return tbl, err
}
