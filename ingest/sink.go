package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
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
	"write.parquet.dict-encoding-enabled.column." + lakeformat.ColSeq: "false",
	"format-version": "2",
}

// Hooks let tests stop a flush at its dangerous points. A hook that
// returns an error aborts the flush as a crash there would.
type Hooks struct {
	// AfterUpload runs when a table's files are written but not committed.
	AfterUpload func(table string) error
	// AfterStage runs when a batch's files of a table are written into the
	// table's open transaction, partial batches included.
	AfterStage func(table string) error
	// AfterTableCommit runs after each table commit, before the watermark.
	AfterTableCommit func(table string) error
	// AfterWatermark runs after the watermark is committed, before the ack.
	AfterWatermark func(lsn uint64) error
	// AfterReloadSlot runs in a reload once its temporary slot has fixed
	// the copy's position lsn, before the copy starts.
	AfterReloadSlot func(lsn uint64) error
	// AfterPartial runs when a partial batch (part of a large transaction)
	// is written, before the batch that commits it.
	AfterPartial func() error
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

// committedLSN returns the source watermark of a changelog table's last
// commit, and whether the table exists. It runs beside the flusher, so it
// leaves the sink's state alone.
func (s *sink) committedLSN(ctx context.Context, schema, name string) (uint64, bool, error) {
	tbl, err := s.cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(s.source, schema, name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("load %s.%s: %w", schema, name, err)
	}
	return tableLSN(tbl), true, nil
}

func tableLSN(tbl *table.Table) uint64 {
	v, _ := strconv.ParseUint(tbl.Properties()[lakeformat.PropSourceLSN], 10, 64)
	return v
}

// commit writes a batch: each table's rows in one Iceberg commit, then
// the source watermark. A partial batch (part of a large transaction) is
// only written; the batch that ends the transaction commits it.
func (s *sink) commit(ctx context.Context, b *batch) error {
	for _, tb := range b.tables {
		if err := s.stage(ctx, tb); err != nil {
			key := tb.schema + "." + tb.name
			delete(s.pending, key)
			return fmt.Errorf("write %s: %w", key, err)
		}
	}
	if b.partial {
		if s.hooks.AfterPartial != nil {
			return s.hooks.AfterPartial()
		}
		return nil
	}
	for _, key := range slices.Sorted(maps.Keys(s.pending)) {
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

// stage writes a table's parts as data files for its open transaction,
// opening one (and creating the table) when needed, and evolving the
// schema first. The files are added to the table when the transaction
// commits (commitPending).
func (s *sink) stage(ctx context.Context, tb tableBatch) error {
	p, err := s.open(ctx, tb)
	if err != nil {
		return err
	}
	for _, part := range tb.parts {
		rec, err := s.evolve(ctx, tb.schema+"."+tb.name, p, part)
		if err != nil {
			return fmt.Errorf("evolve schema: %w", err)
		}
		files, err := writeFiles(ctx, p.tx, rec)
		if rec != part {
			rec.Release()
		}
		if err != nil {
			return fmt.Errorf("write files: %w", err)
		}
		p.files = append(p.files, files...)
	}
	if s.hooks.AfterStage != nil {
		return s.hooks.AfterStage(tb.schema + "." + tb.name)
	}
	return nil
}

// writeFiles writes rec as data files of the transaction's staged table.
func writeFiles(ctx context.Context, tx *table.Transaction, rec arrow.RecordBatch) ([]iceberg.DataFile, error) {
	st, err := tx.StagedTable()
	if err != nil {
		return nil, err
	}
	one := func(yield func(arrow.RecordBatch, error) bool) {
		rec.Retain() // WriteRecords releases what it takes; the caller keeps rec
		yield(rec, nil)
	}
	var files []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, st.Table, rec.Schema(), one) {
		if err != nil {
			return nil, err
		}
		files = append(files, df)
	}
	return files, nil
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
		p = &pendingTx{tx: tbl.NewTransaction(), base: tbl, id: uuid.NewString()}
		s.pending[key] = p
	}
	if tb.pgTypes != "" {
		p.pgTypes = tb.pgTypes
	}
	if tb.partitions != "" {
		p.partitions = tb.partitions
	}
	return p, nil
}

// prepare opens a table's transaction and evolves its schema to the
// columns of sc, for files written outside the transaction (a snapshot's
// workers): it returns the staged table to write them against and the
// schema (with lake column names) to write them with.
func (s *sink) prepare(ctx context.Context, tb tableBatch, sc *arrow.Schema) (*table.Table, *arrow.Schema, error) {
	empty := emptyRecord(sc)
	defer empty.Release()
	tb.parts = []arrow.RecordBatch{empty}
	p, err := s.open(ctx, tb)
	if err != nil {
		return nil, nil, err
	}
	rec, err := s.evolve(ctx, tb.schema+"."+tb.name, p, empty)
	if err != nil {
		return nil, nil, fmt.Errorf("evolve schema: %w", err)
	}
	if rec != empty {
		defer rec.Release()
	}
	st, err := p.tx.StagedTable()
	if err != nil {
		return nil, nil, err
	}
	return st.Table, rec.Schema(), nil
}

func emptyRecord(sc *arrow.Schema) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	return b.NewRecordBatch()
}

// addFiles adds data files written against prepare's staged table to the
// table's open transaction.
func (s *sink) addFiles(key string, files []iceberg.DataFile) {
	s.pending[key].files = append(s.pending[key].files, files...)
}

// pendingTx is a table's open transaction: the table it started from, the
// schema changes made in it and the data files written for it. The files
// are added only when it commits, so that when another writer commits
// first exactly these files can be added again on the table's new state
// (restage).
type pendingTx struct {
	tx         *table.Transaction
	base       *table.Table
	id         string             // unique, in the commit's snapshot summary: did it land?
	pgTypes    string             // PostgreSQL types of the columns last staged
	partitions string             // lakeformat.PropPartitions to record, "" for none
	schemas    []*arrow.Schema    // source schemas evolved in, in order
	files      []iceberg.DataFile // written for this transaction
}

// evolve brings the transaction's schema up to rec's columns (see
// evolve) and notes rec's schema so that a restage can do the same.
func (p *pendingTx) evolve(rec arrow.RecordBatch, log *slog.Logger) (arrow.RecordBatch, error) {
	if n := len(p.schemas); n == 0 || !p.schemas[n-1].Equal(rec.Schema()) || !p.schemas[n-1].Metadata().Equal(rec.Schema().Metadata()) {
		p.schemas = append(p.schemas, rec.Schema())
	}
	return evolve(p.tx, rec, log)
}

// evolve brings the table's schema up to rec's columns (see evolve in
// schema.go). A change is committed at once, in a commit of its own that
// adds no rows and moves no watermark: iceberg-go v0.7.0 cannot commit two
// schema changes in one transaction (the second asserts the schema id the
// first staged, which the catalog does not have yet), and one batch may
// carry several (ADD COLUMN, then RENAME, then ALTER TYPE in one flush).
// The open transaction then goes on from the new table state; the files
// written for it before stay valid, as schema evolution keeps field ids.
// A crash after the schema commit is harmless: the replay finds the
// columns in place.
func (s *sink) evolve(ctx context.Context, key string, p *pendingTx, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	for attempt := 0; ; attempt++ {
		before, err := p.tx.StagedTable()
		if err != nil {
			return nil, err
		}
		out, err := p.evolve(rec, s.log)
		if err != nil {
			return nil, err
		}
		after, err := p.tx.StagedTable()
		if err != nil {
			return nil, err
		}
		if after.Schema().ID == before.Schema().ID && maps.Equal(after.Properties(), before.Properties()) {
			return out, nil
		}
		nt, err := p.tx.Commit(ctx)
		if err == nil {
			s.tables[key] = nt
			p.tx, p.base = nt.NewTransaction(), nt
			return out, nil
		}
		if out != rec {
			out.Release()
		}
		fresh, lerr := s.cat.Iceberg().LoadTable(ctx, p.base.Identifier())
		if lerr != nil || attempt >= 4 || !(Conflict(err) || moved(p.base, fresh)) {
			return nil, fmt.Errorf("commit schema change: %w", err)
		}
		p.tx, p.base = fresh.NewTransaction(), fresh
	}
}

// commitPending commits a table's open transaction. When another writer
// committed to the table first, the files written for it are committed
// again on top of the table's new state.
func (s *sink) commitPending(ctx context.Context, key string, lsn uint64, setLSN bool) error {
	defer delete(s.pending, key)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		}
		done, err := s.finish(ctx, key, lsn, setLSN)
		if err == nil {
			if done && s.hooks.AfterTableCommit != nil {
				return s.hooks.AfterTableCommit(key)
			}
			return nil
		}
		var hook hookError
		if errors.As(err, &hook) {
			return hook.err
		}
		p := s.pending[key]
		delete(s.tables, key)
		fresh, lerr := s.cat.Iceberg().LoadTable(ctx, p.base.Identifier())
		if lerr != nil {
			return fmt.Errorf("commit %s: %w (and reload: %v)", key, err, lerr)
		}
		if landed(fresh, p.id) {
			// the commit answered with an error but was made
			s.tables[key] = fresh
			return nil
		}
		if attempt >= 4 || !(Conflict(err) || moved(p.base, fresh)) {
			return fmt.Errorf("commit %s: %w", key, err)
		}
		s.log.Debug("commit conflict: committing again on the table's new state", "table", key, "err", err)
		np, err := p.restage(fresh, s.log)
		if err != nil {
			return fmt.Errorf("commit %s: %w", key, err)
		}
		s.pending[key] = np
	}
}

// restage starts a transaction on the table's state fresh that makes the
// same schema changes and adds the same data files as p.
func (p *pendingTx) restage(fresh *table.Table, log *slog.Logger) (*pendingTx, error) {
	np := &pendingTx{tx: fresh.NewTransaction(), base: fresh, id: uuid.NewString(), pgTypes: p.pgTypes, partitions: p.partitions, files: p.files}
	for _, sc := range p.schemas {
		empty := emptyRecord(sc)
		_, err := np.evolve(empty, log)
		empty.Release()
		if err != nil {
			return nil, fmt.Errorf("evolve schema again: %w", err)
		}
	}
	was, err := p.tx.StagedTable()
	if err != nil {
		return nil, err
	}
	now, err := np.tx.StagedTable()
	if err != nil {
		return nil, err
	}
	// the files carry the field ids of the schema they were written with
	if !was.Schema().Equals(now.Schema()) {
		return nil, errors.New("the table's schema changed under a concurrent commit; the files written are not added")
	}
	return np, nil
}

// moved reports whether the table's branch head or schema is no longer
// the one a transaction started from base asserted at commit.
func moved(base, fresh *table.Table) bool {
	id := func(t *table.Table) int64 {
		if s := t.CurrentSnapshot(); s != nil {
			return s.SnapshotID
		}
		return -1
	}
	return id(base) != id(fresh) || base.Schema().ID != fresh.Schema().ID
}

// LostRace reports whether a commit of a transaction started from base
// failed with err because another writer committed to the table first: by
// err's type (Conflict) or, for the SQL catalog's untyped requirement
// failure, by the table's branch head or schema having moved from base's.
// A commit whose answer was lost after it landed also leaves the table
// moved: callers rule that out first.
func LostRace(ctx context.Context, cat table.CatalogIO, base *table.Table, err error) bool {
	if Conflict(err) {
		return true
	}
	fresh, lerr := cat.LoadTable(ctx, base.Identifier())
	return lerr == nil && moved(base, fresh)
}

// landed reports whether the commit of the transaction with id is in tbl.
func landed(tbl *table.Table, id string) bool {
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties[propCommitID] == id {
			return true
		}
	}
	return false
}

// propCommitID marks the snapshot of a sink commit, to tell after an
// error whether the commit was made.
const propCommitID = "cdclake.commit-id"

// hookError carries a test hook's error out of finish unretried.
type hookError struct{ err error }

func (h hookError) Error() string { return h.err.Error() }

// finish commits a table's open transaction and reports whether it
// committed (false: skipped, an earlier attempt committed it). With setLSN
// it records lsn as the table's watermark.
func (s *sink) finish(ctx context.Context, key string, lsn uint64, setLSN bool) (bool, error) {
	p := s.pending[key]
	st, err := p.tx.StagedTable()
	if err != nil {
		return false, err
	}
	props := iceberg.Properties{}
	if setLSN {
		if tableLSN(st.Table) >= lsn {
			// committed before, by an attempt whose answer was lost:
			// a commit to lsn leaves exactly lsn
			return false, nil
		}
		props[lakeformat.PropSourceLSN] = strconv.FormatUint(lsn, 10)
	}
	if len(p.files) > 0 {
		snap := iceberg.Properties{lakeformat.PropSourceLSN: strconv.FormatUint(lsn, 10), propCommitID: p.id}
		// the files are new (unique names) and carry field ids
		err := p.tx.AddDataFiles(ctx, p.files, snap, table.WithoutDuplicateCheck(), table.WithoutAutoNameMapping())
		if err != nil {
			return false, fmt.Errorf("add written files: %w", err)
		}
	}
	if p.pgTypes != "" && st.Properties()[lakeformat.PropPGTypes] != p.pgTypes {
		props[lakeformat.PropPGTypes] = p.pgTypes
	}
	if p.partitions != "" && st.Properties()[lakeformat.PropPartitions] != p.partitions {
		props[lakeformat.PropPartitions] = p.partitions
	}
	if len(props) > 0 {
		if err := p.tx.SetProperties(props); err != nil {
			return false, err
		}
	}
	if s.hooks.AfterUpload != nil {
		if err := s.hooks.AfterUpload(key); err != nil {
			return false, hookError{err}
		}
	}
	nt, err := p.tx.Commit(ctx)
	if err != nil {
		return false, err
	}
	s.tables[key] = nt
	return true, nil
}

// Conflict reports whether a commit failed, by its error, because another
// writer committed first or held the catalog, so that nothing of it was
// committed and it can be made again on the table's new state.
//
// The SQL catalog of iceberg-go v0.7.0 returns table.ErrCommitFailed only
// when its compare-and-swap of the metadata location finds another
// commit; the usual conflict, found when it checks the commit's
// requirements against the table it loads (the branch head, the schema),
// comes back as an untyped error ("requirement failed: branch "main" has
// changed", table/requirements.go). That case cannot be told by the
// error's type: a committer that holds the transaction's base table checks
// the requirement itself instead (moved), after ruling out that the
// commit landed.
func Conflict(err error) bool {
	if errors.Is(err, table.ErrCommitFailed) {
		return true
	}
	var se *sqlite.Error // SQLite catalog: another connection holds the write lock
	if errors.As(err, &se) {
		code := se.Code() & 0xff // primary code of an extended one
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	var pe *pgconn.PgError // PostgreSQL catalog: serializable transaction lost
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" // serialization_failure, deadlock_detected
	}
	return false
}

// table loads or creates the changelog table for tb and adds columns its
// parts have that the table lacks.
func (s *sink) table(ctx context.Context, tb tableBatch) (*table.Table, error) {
	key := tb.schema + "." + tb.name
	tbl := s.tables[key]
	if tbl == nil {
		ident := lakeformat.ChangelogIdent(s.source, tb.schema, tb.name)
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
	ts, ok := sc.FindFieldByName(lakeformat.ColCommitTS)
	if !ok {
		return nil, fmt.Errorf("schema lacks %s", lakeformat.ColCommitTS)
	}
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{
		SourceIDs: []int{ts.ID}, FieldID: 1000, Name: lakeformat.ColCommitTS + "_hour", Transform: iceberg.HourTransform{},
	})
	props := iceberg.Properties{}
	for k, v := range changelogProps {
		props[k] = v
	}
	keys, _ := json.Marshal(tb.keys)
	props[lakeformat.PropPrimaryKey] = string(keys)
	// the location is built from encoded names, so none can leave the lake
	loc := catalog.TableLocation(s.cat.Warehouse(), ident)
	tbl, err := s.cat.Iceberg().CreateTable(ctx, ident, sc, icecat.WithPartitionSpec(&spec), icecat.WithProperties(props), icecat.WithLocation(loc))
	if errors.Is(err, icecat.ErrTableAlreadyExists) {
		return s.cat.Iceberg().LoadTable(ctx, ident)
	}
	return tbl, err
}
