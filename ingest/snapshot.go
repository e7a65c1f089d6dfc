package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest/pgarrow"
	"github.com/cdclake/cdclake/lakeformat"
)

// A snapshot copies a table's existing rows into its changelog as 'r'
// rows, consistent with a position LSN of the replication stream: the
// rows are read under the snapshot PostgreSQL exported when it created a
// slot at LSN, and written with _cdc_lsn = LSN-1, so that every streamed
// change (commit LSN >= LSN) orders after them. A re-snapshot of a table
// that already has rows in the lake starts with a 't' row at the same
// position, so the reloaded rows replace the old state.
//
// Workers read the table in ranges of pages (ctid ranges, per partition
// for partitioned tables) with COPY, in parallel, each in a transaction
// set to the exported snapshot, and write them as Parquet files (decoding
// and encoding overlap: a COPY feeds the file writer through a channel).
// Each table is committed in one Iceberg commit that adds all its files
// once all its ranges are in.

const (
	chunkPages      = 2048     // pages (16 MiB) of a table read by one COPY
	snapshotRecRows = 64 << 10 // rows in one Arrow record
)

// snapTable is one table to snapshot.
type snapTable struct {
	oid      uint32
	rel      *relation
	table    *table.Table  // staged table the workers write files for
	schema   *arrow.Schema // the rows' schema, with lake column names
	files    []iceberg.DataFile
	chunks   []chunk
	bytes    int64 // size on disk, for the estimate of time left
	progress catalog.TableSnapshot
	left     int // chunks not yet written
	// partitions is a partitioned table's leaf partitions under the
	// snapshot, recorded with its commit (lakeformat.PropPartitions); "" otherwise
	partitions string
}

type chunk struct {
	table    int    // index in the snapshot's tables
	from     string // qualified relation to read (the table or a partition)
	first    uint32 // first page
	last     uint32 // page after the range; MaxUint32: to the end
	seqStart int64
}

// chunkDone is a chunk written: its files, rows and COPY bytes.
type chunkDone struct {
	table       int
	files       []iceberg.DataFile
	rows, bytes int64
}

// snapshot copies tables consistent with the exported snapshot snap,
// taken at position lsn. truncate marks a reload of tables already in
// the lake.
func (s *source) snapshot(ctx context.Context, sk *sink, reg *pgarrow.Registry, o Options,
	snap string, lsn uint64, names []string, truncate bool) error {
	if len(names) == 0 {
		return nil
	}
	tables, err := s.planAt(ctx, reg, snap, names)
	if err != nil {
		return err
	}
	if err := s.recordPartitions(ctx, snap, tables); err != nil {
		return err
	}
	started := o.Now()
	for _, t := range tables {
		t.progress = catalog.TableSnapshot{Source: o.Name, Schema: t.rel.schema, Table: t.rel.name,
			State: catalog.SnapshotRunning, LSN: lsn, TotalBytes: t.bytes, StartedAt: started}
		if err := sk.cat.PutSnapshot(ctx, t.progress); err != nil {
			return err
		}
	}
	if err := prepareSnapshot(ctx, sk, tables, lsn, truncate, started); err != nil {
		return err
	}
	o.Logger.Info("snapshot started", "tables", len(tables), "lsn", fmtLSN(lsn), "workers", o.SnapshotWorkers)

	var jobs []chunk
	for i, t := range tables {
		for _, c := range t.chunks {
			c.table = i
			jobs = append(jobs, c)
		}
		t.left = len(t.chunks)
	}
	jobCh := make(chan chunk)
	out := make(chan chunkDone, o.SnapshotWorkers)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(jobCh)
		for _, j := range jobs {
			select {
			case jobCh <- j:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	var wg sync.WaitGroup
	for w := 0; w < o.SnapshotWorkers; w++ {
		wg.Add(1)
		g.Go(func() error {
			defer wg.Done()
			return s.snapshotWorker(gctx, snap, tables, lsn, started, jobCh, out)
		})
	}
	go func() { wg.Wait(); close(out) }()
	g.Go(func() error {
		return writeSnapshot(gctx, sk, o, tables, lsn, truncate, out)
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	o.Logger.Info("snapshot done", "tables", len(tables), "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// planAt plans the copy under the exported snapshot snap, so that the
// columns copied are the tables' columns as of the snapshot: a column
// added later reaches the lake with the stream, which records its
// default for the rows before it (docs/types.md).
func (s *source) planAt(ctx context.Context, reg *pgarrow.Registry, snap string, names []string) ([]*snapTable, error) {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin planning transaction: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET TRANSACTION SNAPSHOT '%s'", snap)); err != nil {
		return nil, fmt.Errorf("set transaction snapshot: %w", err)
	}
	return s.planSnapshot(ctx, reg, names)
}

// planSnapshot resolves each table's columns and splits it into chunks.
func (s *source) planSnapshot(ctx context.Context, reg *pgarrow.Registry, names []string) ([]*snapTable, error) {
	var out []*snapTable
	for _, name := range names {
		var oid uint32
		var schema, rel string
		var kind byte
		err := s.conn.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::"char" FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`, name).Scan(&oid, &schema, &rel, &kind)
		if err != nil {
			return nil, fmt.Errorf("look up table %s: %w", name, err)
		}
		rows, err := s.conn.Query(ctx, `SELECT attname, atttypid, atttypmod FROM pg_attribute
			WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`, oid)
		if err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", name, err)
		}
		type col struct {
			Name   string
			OID    uint32
			Typmod int32
		}
		cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[col])
		if err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", name, err)
		}
		keys, err := s.primaryKey(ctx, oid)
		if err != nil {
			return nil, err
		}
		r := &relation{id: oid, schema: schema, name: rel, keys: keys}
		fields := make([]arrow.Field, 0, len(cols)+len(lakeformat.MetaFields()))
		for _, c := range cols {
			dec, err := reg.Column(ctx, c.OID, c.Typmod)
			if err != nil {
				return nil, fmt.Errorf("column %s of %s: %w", c.Name, name, err)
			}
			r.cols = append(r.cols, relColumn{name: c.Name, oid: c.OID, dec: dec})
			fields = append(fields, arrow.Field{Name: c.Name, Type: dec.ArrowType(), Nullable: true})
		}
		r.arrow = arrow.NewSchema(append(fields, lakeformat.MetaFields()...), nil)
		t := &snapTable{oid: oid, rel: r}
		parts := []uint32{oid}
		if kind == 'p' {
			rows, err := s.conn.Query(ctx, `SELECT relid::oid FROM pg_partition_tree($1) WHERE isleaf`, oid)
			if err != nil {
				return nil, fmt.Errorf("list partitions of %s: %w", name, err)
			}
			if parts, err = pgx.CollectRows(rows, pgx.RowTo[uint32]); err != nil {
				return nil, fmt.Errorf("list partitions of %s: %w", name, err)
			}
		}
		for _, p := range parts {
			var qualified string
			var size, blockSize int64
			err := s.conn.QueryRow(ctx, `SELECT format('%I.%I', n.nspname, c.relname), pg_relation_size(c.oid),
				current_setting('block_size')::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE c.oid = $1`, p).Scan(&qualified, &size, &blockSize)
			if err != nil {
				return nil, fmt.Errorf("size of %s: %w", name, err)
			}
			t.bytes += size
			pages := uint32(size / blockSize)
			for first := uint32(0); ; first += chunkPages {
				c := chunk{from: qualified, first: first, last: first + chunkPages}
				if c.last >= pages {
					c.last = math.MaxUint32
				}
				t.chunks = append(t.chunks, c)
				if c.last == math.MaxUint32 {
					break
				}
			}
		}
		for i := range t.chunks {
			t.chunks[i].seqStart = int64(i)<<32 + 1 // seq 0 is left for the truncate marker
		}
		out = append(out, t)
	}
	return out, nil
}

// recordPartitions notes the leaf partitions of the partitioned tables
// as of the snapshot, to be committed with their rows (lakeformat.PropPartitions).
func (s *source) recordPartitions(ctx context.Context, snap string, tables []*snapTable) error {
	oids := make([]uint32, len(tables))
	for i, t := range tables {
		oids[i] = t.oid
	}
	sets, err := s.partitionSetsAt(ctx, snap, oids)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if set, ok := sets[t.oid]; ok {
			t.partitions = set.encode()
		}
	}
	return nil
}

// prepareSnapshot opens each table's transaction (creating the table and
// evolving its schema), with a truncate marker first when the tables are
// reloaded, so that workers can write files for it.
func prepareSnapshot(ctx context.Context, sk *sink, tables []*snapTable, lsn uint64, truncate bool, now time.Time) error {
	for _, t := range tables {
		tb := tableBatch{schema: t.rel.schema, name: t.rel.name, keys: t.rel.keys, pgTypes: t.rel.pgTypes(), partitions: t.partitions}
		if truncate {
			b := array.NewRecordBuilder(memory.DefaultAllocator, t.rel.arrow)
			for i := range t.rel.cols {
				b.Field(i).AppendNull()
			}
			appendCDC(b, len(t.rel.cols), lakeformat.OpTruncate, int64(lsn)-1, 0, 0, arrow.Timestamp(now.UnixMicro()), nil)
			tb.parts = []arrow.RecordBatch{b.NewRecordBatch()}
			b.Release()
			err := sk.stage(ctx, tb)
			tb.release()
			if err != nil {
				return err
			}
		}
		var err error
		if t.table, t.schema, err = sk.prepare(ctx, tb, t.rel.arrow); err != nil {
			return err
		}
	}
	return nil
}

// snapshotWorker reads chunks under the exported snapshot and writes them
// as files. Every row carries the copy's start, started, as its
// _cdc_commit_ts.
func (s *source) snapshotWorker(ctx context.Context, snap string, tables []*snapTable, lsn uint64, started time.Time,
	jobs <-chan chunk, out chan<- chunkDone) error {
	conn, err := pgx.ConnectConfig(ctx, s.pgxConfig())
	if err != nil {
		return connectError(s.cfg, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("begin snapshot transaction: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET TRANSACTION SNAPSHOT '%s'", snap)); err != nil {
		return fmt.Errorf("set transaction snapshot: %w", err)
	}
	// the connection reads the next chunk while the last one is encoded
	g, gctx := errgroup.WithContext(ctx)
	copies := make(chan *chunkCopy, 1)
	g.Go(func() error {
		defer close(copies)
		ts := arrow.Timestamp(started.UnixMicro())
		for c := range jobs {
			// before the chunk goes to the writer, which waits for its records
			if err := checkNotRewritten(gctx, conn, c.from); err != nil {
				return err
			}
			cc := &chunkCopy{chunk: c, recs: make(chan arrow.RecordBatch, 1)}
			select {
			case copies <- cc:
			case <-gctx.Done():
				return gctx.Err()
			}
			if err := copyChunk(gctx, conn, tables[c.table], cc, int64(lsn)-1, ts); err != nil {
				return fmt.Errorf("copy %s: %w", c.from, err)
			}
		}
		return nil
	})
	g.Go(func() error {
		for cc := range copies {
			done, err := writeChunk(gctx, tables[cc.table], cc)
			if err != nil {
				return fmt.Errorf("write %s: %w", cc.from, err)
			}
			select {
			case out <- done:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

// checkNotRewritten locks relation from until the copy's transaction ends
// (so no rewrite can commit while it is read) and fails when it was
// rewritten (ALTER TABLE ... TYPE, TRUNCATE, VACUUM FULL, CLUSTER) after
// the snapshot was taken: such a rewrite is not MVCC-safe, and a COPY
// under the older snapshot reads the new file as empty. pg_class read by
// the query shows the file as of the snapshot, pg_relation_filenode the
// current one. The copy then fails as a whole; its tables' records stay
// "running", so the next start copies them again under a new snapshot.
func checkNotRewritten(ctx context.Context, conn *pgx.Conn, from string) error {
	if _, err := conn.Exec(ctx, "LOCK TABLE ONLY "+from+" IN ACCESS SHARE MODE"); err != nil {
		return fmt.Errorf("lock %s: %w", from, err)
	}
	var rewritten bool
	err := conn.QueryRow(ctx, `SELECT c.relfilenode <> pg_relation_filenode(c.oid) FROM pg_class c WHERE c.oid = $1::regclass`, from).Scan(&rewritten)
	if err != nil {
		return fmt.Errorf("check %s for a rewrite: %w", from, err)
	}
	if rewritten {
		return fmt.Errorf("%s was rewritten in the source while it was copied (ALTER TABLE ... TYPE, TRUNCATE, VACUUM FULL), so the copy missed rows: it is copied again at the next start", from)
	}
	return nil
}

// chunkCopy is a chunk being read: its records, and its COPY bytes once
// recs is closed.
type chunkCopy struct {
	chunk
	recs  chan arrow.RecordBatch
	bytes int64
}

// copyChunk reads one chunk with COPY into records sent to cc.recs, which
// it closes at the end.
func copyChunk(ctx context.Context, conn *pgx.Conn, t *snapTable, cc *chunkCopy, lsn int64, ts arrow.Timestamp) error {
	defer close(cc.recs)
	cols := make([]string, len(t.rel.cols))
	for i, col := range t.rel.cols {
		cols[i] = pgx.Identifier{col.name}.Sanitize()
	}
	where := fmt.Sprintf("ctid >= '(%d,0)'::tid", cc.first)
	if cc.last != math.MaxUint32 {
		where += fmt.Sprintf(" AND ctid < '(%d,0)'::tid", cc.last)
	}
	sql := fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT", strings.Join(cols, ", "), cc.from, where)
	cw := &copyWriter{ctx: ctx, rel: t.rel, out: cc.recs, seq: cc.seqStart, lsn: lsn, ts: ts,
		b: array.NewRecordBuilder(memory.DefaultAllocator, t.schema)}
	defer cw.b.Release()
	cw.reserve()
	_, err := conn.PgConn().CopyTo(ctx, cw, sql)
	if err == nil {
		err = cw.flush()
	}
	cc.bytes = cw.total
	return err
}

// writeChunk writes a chunk's records as files. On an error the records
// left unread are dropped (Go memory) and the copy stops with the
// context.
func writeChunk(ctx context.Context, t *snapTable, cc *chunkCopy) (chunkDone, error) {
	done := chunkDone{table: cc.table}
	seq := func(yield func(arrow.RecordBatch, error) bool) {
		for rec := range cc.recs {
			done.rows += rec.NumRows()
			if !yield(rec, nil) {
				return
			}
		}
	}
	for df, err := range table.WriteRecords(ctx, t.table, t.schema, seq, table.WithClusteredWrite()) {
		if err != nil {
			return done, err
		}
		done.files = append(done.files, df)
	}
	done.bytes = cc.bytes
	return done, nil
}

// copyWriter receives COPY text rows and builds Arrow records.
type copyWriter struct {
	ctx     context.Context
	rel     *relation
	b       *array.RecordBuilder
	out     chan<- arrow.RecordBatch
	seq     int64
	lsn     int64
	ts      arrow.Timestamp
	rows    int
	total   int64 // bytes of COPY data
	partial []byte
	fields  [][]byte
	buf     []byte
}

// Write takes COPY data: PostgreSQL sends one row per message, but a row
// split across writes is put together here.
func (w *copyWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		w.partial = append(w.partial, p...)
		p = w.partial
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial[:0], p...)
			return n, nil
		}
		if err := w.row(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
		if len(p) == 0 {
			w.partial = w.partial[:0]
			return n, nil
		}
	}
}

func (w *copyWriter) row(line []byte) error {
	var err error
	w.fields, w.buf, err = splitCopyRow(line, w.fields, w.buf)
	if err != nil {
		return err
	}
	if len(w.fields) != len(w.rel.cols) {
		return fmt.Errorf("COPY row has %d fields, want %d", len(w.fields), len(w.rel.cols))
	}
	for i, c := range w.rel.cols {
		fb := w.b.Field(i)
		if w.fields[i] == nil {
			fb.AppendNull()
		} else if err := c.dec.Append(fb, w.fields[i]); err != nil {
			return fmt.Errorf("decode %s: %w", c.name, err)
		}
	}
	appendCDC(w.b, len(w.rel.cols), lakeformat.OpRead, w.lsn, w.seq, 0, w.ts, nil)
	w.seq++
	w.rows++
	w.total += int64(len(line)) + 1
	if w.rows >= snapshotRecRows {
		return w.flush()
	}
	return nil
}

func (w *copyWriter) flush() error {
	if w.rows == 0 {
		return nil
	}
	rec := w.b.NewRecordBatch()
	select {
	case w.out <- rec:
	case <-w.ctx.Done():
		rec.Release()
		return w.ctx.Err()
	}
	w.rows = 0
	w.reserve()
	return nil
}

// reserve sizes the builders for a record, rather than growing them.
func (w *copyWriter) reserve() {
	for _, f := range w.b.Fields() {
		f.Reserve(snapshotRecRows)
	}
}

// appendCDC appends the metadata columns of one change row, which start
// at field n of b.
func appendCDC(b *array.RecordBuilder, n int, op string, lsn, seq, xid int64, ts arrow.Timestamp, unchanged []string) {
	b.Field(n).(*array.StringBuilder).Append(op)
	b.Field(n + 1).(*array.Int64Builder).Append(lsn)
	b.Field(n + 2).(*array.Int64Builder).Append(seq)
	b.Field(n + 3).(*array.Int64Builder).Append(xid)
	b.Field(n + 4).(*array.TimestampBuilder).Append(ts)
	lb := b.Field(n + 5).(*array.ListBuilder)
	if len(unchanged) == 0 {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	vb := lb.ValueBuilder().(*array.StringBuilder)
	for _, u := range unchanged {
		vb.Append(u)
	}
}

// writeSnapshot gathers the files of each table and commits a table once
// all its chunks are in.
func writeSnapshot(ctx context.Context, sk *sink, o Options, tables []*snapTable, lsn uint64, truncate bool, in <-chan chunkDone) error {
	lastLog := time.Now()
	started := lastLog
	commit := func(t *snapTable) error {
		key := t.rel.schema + "." + t.rel.name
		sk.addFiles(key, t.files)
		if err := sk.commitPending(ctx, key, lsn, !truncate); err != nil {
			return err
		}
		t.progress.State = catalog.SnapshotDone
		if err := sk.cat.PutSnapshot(ctx, t.progress); err != nil {
			return err
		}
		o.Logger.Info("table snapshot committed", "table", key, "rows", t.progress.Rows, "files", len(t.files))
		return nil
	}
	// a partitioned table without partitions has no chunk to wait for: its
	// (truncate marker and) partition set commit at once
	for _, t := range tables {
		if len(t.chunks) == 0 {
			if err := commit(t); err != nil {
				return err
			}
		}
	}
	for d := range in {
		t := tables[d.table]
		t.files = append(t.files, d.files...)
		t.progress.Rows += d.rows
		t.progress.Bytes += d.bytes
		if t.left--; t.left == 0 {
			if err := commit(t); err != nil {
				return err
			}
		}
		if time.Since(lastLog) >= o.ProgressInterval {
			lastLog = time.Now()
			for _, t := range tables {
				if t.progress.State == catalog.SnapshotDone {
					continue
				}
				elapsed := time.Since(started).Seconds()
				rate := float64(t.progress.Rows) / elapsed
				left := "unknown"
				if t.progress.Bytes > 0 && t.bytes > t.progress.Bytes {
					left = time.Duration(float64(t.bytes-t.progress.Bytes) / (float64(t.progress.Bytes) / elapsed) * float64(time.Second)).Round(time.Second).String()
				}
				o.Logger.Info("snapshot progress", "table", t.rel.schema+"."+t.rel.name, "rows", t.progress.Rows,
					"bytes", t.progress.Bytes, "rows_per_s", int64(rate), "est_left", left)
				if err := sk.cat.PutSnapshot(ctx, t.progress); err != nil {
					return err
				}
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, t := range tables {
		if t.left > 0 {
			return errors.New("snapshot ended before all chunks were read")
		}
	}
	return nil
}

func fmtLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// publishedTables lists the tables of a publication (partitioned tables by
// their root), as quoted schema.table names.
func (s *source) publishedTables(ctx context.Context, publication string) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT format('%I.%I', n.nspname, c.relname)
		FROM pg_publication p, pg_publication_tables pt
		JOIN pg_class l ON l.oid = format('%I.%I', pt.schemaname, pt.tablename)::regclass
		JOIN pg_class c ON c.oid = CASE WHEN l.relispartition THEN pg_partition_root(l.oid) ELSE l.oid END
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1 AND pt.pubname = $1 AND (p.pubviaroot OR NOT l.relispartition) ORDER BY 1`, publication)
	if err != nil {
		return nil, fmt.Errorf("list published tables: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// reload snapshots tables again while their changes may be streaming: a
// temporary slot exports a snapshot at a new position, and the reloaded
// rows (after a truncate marker) replace what the lake had before it.
//
// Each table's copy is recorded as running before the slot is created, at
// a lower bound of the slot's position (pendingLSN): a reload
// that stops before its snapshot is committed, or cannot get its slot, is
// resumed by the next start (reloadUnfinished), and compaction holds below
// it from the start.
func (s *source) reload(ctx context.Context, sk *sink, reg *pgarrow.Registry, o Options, tables []string) error {
	if err := s.markReload(ctx, sk.cat, o, tables); err != nil {
		return err
	}
	repl, err := s.replication(ctx)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())
	slot := fmt.Sprintf("cdclake_reload_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53400" { // configuration_limit_exceeded
		return fmt.Errorf("create temporary slot for the snapshot: %w (a reload needs one more replication slot and walsender than the sources: raise max_replication_slots and max_wal_senders; the next start resumes it)", err)
	}
	if err != nil {
		return fmt.Errorf("create temporary slot for the snapshot: %w", err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("parse consistent point: %w", err)
	}
	if o.Hooks.AfterReloadSlot != nil {
		if err := o.Hooks.AfterReloadSlot(s.lake(uint64(lsn))); err != nil {
			return err
		}
	}
	return s.snapshot(ctx, sk, reg, o, res.SnapshotName, s.lake(uint64(lsn)), tables, true)
}

// markReload records a running copy of each table (quoted schema.table),
// at pendingLSN.
func (s *source) markReload(ctx context.Context, cat *catalog.Catalog, o Options, tables []string) error {
	lsn, err := s.pendingLSN(ctx)
	if err != nil {
		return err
	}
	for _, name := range tables {
		var schema, table string
		err := s.conn.QueryRow(ctx, `SELECT n.nspname, c.relname FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`, name).Scan(&schema, &table)
		if err != nil {
			return fmt.Errorf("look up table %s: %w", name, err)
		}
		err = cat.PutSnapshot(ctx, catalog.TableSnapshot{Source: o.Name, Schema: schema, Table: table,
			State: catalog.SnapshotRunning, LSN: lsn, StartedAt: o.Now()})
		if err != nil {
			return err
		}
	}
	return nil
}

// pendingLSN is the position recorded for a copy before its slot exists,
// a lower bound of the slot's position: that is the end of a WAL record
// written after now, so past the current insert position, which is itself
// past every change the stream has committed. Compaction holds below it.
func (s *source) pendingLSN(ctx context.Context) (uint64, error) {
	lsn, err := s.insertLSN(ctx)
	if err != nil {
		return 0, err
	}
	return s.lake(lsn) + 1, nil
}

// reloadUnfinished reloads the tables whose snapshot did not finish. The
// record of a table dropped since is retired (marked dropped), since its
// rows can no longer be read.
func (s *source) reloadUnfinished(ctx context.Context, sk *sink, reg *pgarrow.Registry, o Options) error {
	snaps, err := sk.cat.Snapshots(ctx, o.Name)
	if err != nil {
		return err
	}
	var tables []string
	for _, sn := range snaps {
		if sn.State != catalog.SnapshotRunning {
			continue
		}
		name := pgx.Identifier{sn.Schema, sn.Table}.Sanitize()
		var exists bool
		if err := s.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			return fmt.Errorf("look up table %s: %w", name, err)
		}
		if !exists {
			sn.State = catalog.SnapshotDropped
			if err := sk.cat.PutSnapshot(ctx, sn); err != nil {
				return err
			}
			o.Logger.Warn("a table whose snapshot did not finish no longer exists; its snapshot is retired", "table", sn.Schema+"."+sn.Table)
			continue
		}
		tables = append(tables, name)
	}
	if len(tables) == 0 {
		return nil
	}
	o.Logger.Warn("snapshots were interrupted; reloading their tables", "tables", tables)
	return s.reload(ctx, sk, reg, o, tables)
}

// Reload snapshots the named tables (schema.table) of a source again while
// its ingest may keep streaming (cdclake snapshot --table).
func Reload(ctx context.Context, cat *catalog.Catalog, o Options, tables []string) error {
	src, err := connect(ctx, o.Source)
	if err != nil {
		return err
	}
	defer src.conn.Close(context.Background())
	o = o.withDefaults(src.cfg.Database)
	rec, err := cat.Source(ctx, o.Name)
	if err != nil {
		return fmt.Errorf("source %q is not in the lake yet (run cdclake ingest first): %w", o.Name, err)
	}
	src.base = rec.LSNBase
	qualified := make([]string, len(tables))
	for i, t := range tables {
		qualified[i] = t
		if !strings.Contains(t, `"`) {
			qualified[i] = quoteQualified(t)
		}
	}
	return src.reload(ctx, newSink(cat, o.Name, Hooks{}, o.Logger), pgarrow.NewRegistry(src.conn), o, qualified)
}
