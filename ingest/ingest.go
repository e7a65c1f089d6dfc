package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest/pgarrow"
	"github.com/cdclake/cdclake/lakeformat"
)

// Check connects to the source and verifies it can be replicated from,
// without changing anything.
func Check(ctx context.Context, o Options) error {
	src, err := connect(ctx, o.Source)
	if err != nil {
		return err
	}
	defer src.conn.Close(context.Background())
	if err := src.check(ctx, o.Tables); err != nil {
		return err
	}
	o = o.withDefaults(src.cfg.Database)
	if err := src.checkIdentity(ctx, o.Publication, o.Tables); err != nil {
		return err
	}
	si, err := src.slotFree(ctx, o.Slot)
	if err != nil {
		return err
	}
	if si.active {
		return activeSlotError(o.Slot, si.pid)
	}
	return nil
}

// Run streams the source into the lake until ctx is cancelled (then it
// flushes, commits, acknowledges and returns nil) or, with CatchUp, until
// everything committed before the start is in the lake.
func Run(ctx context.Context, cat *catalog.Catalog, o Options) error {
	src, err := connect(ctx, o.Source)
	if err != nil {
		return err
	}
	defer src.conn.Close(context.Background())
	o = o.withDefaults(src.cfg.Database)
	if err := src.lock(ctx, o.Slot); err != nil {
		return err
	}
	defer src.unlock(o.Slot)
	if err := src.check(ctx, o.Tables); err != nil {
		return err
	}
	if err := src.checkIdentity(ctx, o.Publication, o.Tables); err != nil {
		return err
	}
	createdPub, err := src.ensurePublication(ctx, o.Publication, o.Tables)
	if err != nil {
		return err
	}
	sk := newSink(cat, o.Name, o.Hooks, o.Logger)
	reg := pgarrow.NewRegistry(src.conn)
	start, err := startPosition(ctx, src, cat, o, func(snap string, lsn uint64, truncate bool) error {
		tables, err := src.publishedTables(ctx, o.Publication)
		if err != nil {
			return err
		}
		return src.snapshot(ctx, sk, reg, o, snap, lsn, tables, truncate)
	})
	if err != nil {
		if createdPub {
			// a slot created after the publication needs it to decode
			if si, serr := src.slot(context.Background(), o.Slot); serr == nil && !si.exists {
				src.dropPublication(context.Background(), o.Publication)
			}
		}
		return err
	}
	if o.Snapshot == "initial" {
		if err := markUncopied(ctx, src, cat, o); err != nil {
			return err
		}
	}
	// snapshots a crash interrupted start over, consistent with a new position
	if err := src.reloadUnfinished(ctx, sk, reg, o); err != nil {
		return err
	}
	repl, err := src.replication(ctx)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())

	var target uint64
	var targetAt time.Time
	if o.CatchUp {
		if target, targetAt, err = src.catchUpTarget(ctx, o.Now, o.Logger); err != nil {
			return err
		}
	}
	args := []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", o.Publication)}
	if major, _ := strconv.Atoi(strings.SplitN(src.conn.PgConn().ParameterStatus("server_version"), ".", 2)[0]); major >= 14 && !o.protocol1 {
		// large transactions arrive while they run and are spooled here
		args = []string{"proto_version '2'", "streaming 'on'", args[1]}
	}
	err = pglogrepl.StartReplication(ctx, repl, o.Slot, pglogrepl.LSN(start-src.base), pglogrepl.StartReplicationOptions{PluginArgs: args})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" {
			si, _ := src.slot(ctx, o.Slot)
			return activeSlotError(o.Slot, si.pid)
		}
		return fmt.Errorf("start replication from slot %q: %w", o.Slot, err)
	}
	o.Logger.Info("streaming", "slot", o.Slot, "publication", o.Publication, "from_lsn", pglogrepl.LSN(start).String(), "catch_up", o.CatchUp)

	dec := newDecoder(reg, sk.committedLSN)
	dec.primaryKey = src.primaryKey
	dec.timeout = o.FlushTimeout
	dec.attributes = src.attributes
	if o.Metrics != nil {
		go watchSlot(ctx, src.pgxConfig(), o)
	}
	st := newStream(repl, dec, sk, o, start, target)
	st.base = src.base
	if st.silence, err = src.silenceLimit(ctx, o); err != nil {
		return err
	}
	bgCtx, stopBg := context.WithCancel(ctx) // work beside the stream (see stream.stopBg)
	defer stopBg()
	st.stopBg = stopBg
	dec.lakeTypes = sk.lakePGTypes
	if o.Snapshot == "initial" {
		dec.onNew = func(schema, name string) { st.reloadNew(bgCtx, schema, name) }
		dec.onRewrite = func(rctx context.Context, schema, name, why string) error {
			return st.reloadRewritten(bgCtx, rctx, schema, name, why)
		}
	} else {
		dec.onRewrite = func(_ context.Context, schema, name, why string) error {
			o.Logger.Warn("table rewritten in the source: rows in the lake may differ until it is reloaded (--snapshot never: run cdclake snapshot --table)",
				"table", schema+"."+name, "why", why)
			return nil
		}
	}
	// partitions changed without a change message (see lakeformat.PropPartitions)
	pw := newPartitionWatcher(st, src.pgxConfig(), o.Snapshot == "initial")
	if o.CatchUp {
		// one check, which run waits for
		st.bg.Add(1)
		go func() {
			defer st.bg.Done()
			pw.once(bgCtx)
		}()
		if err := st.run(ctx); err != nil || !st.caughtUp.Load() {
			return err
		}
		return recordCaughtUp(ctx, cat, o, target, targetAt)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		pw.run(watchCtx)
	}()
	err = st.run(ctx)
	stopWatch()
	<-watchDone
	return err
}

// startPosition reconciles the slot with the catalog's watermark, creating
// the slot (and the source record) on first use, and returns the lake
// position to stream from (see catalog.Source.LSNBase; src.base is set
// from the record).
//
// A source whose server is not the one the lake streamed from (moved to a
// new server, restored from a dump or to an earlier point in time) has
// its WAL insert position below the lake's watermark: ingest refuses to
// stream it, and --resnapshot starts a new epoch (newEpoch) and reloads
// every table.
func startPosition(ctx context.Context, src *source, cat *catalog.Catalog, o Options,
	snapshot func(snap string, lsn uint64, truncate bool) error) (uint64, error) {
	rec, err := cat.Source(ctx, o.Name)
	known := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNoSuchSource) {
		return 0, err
	}
	src.base = rec.LSNBase
	si, err := src.slotFree(ctx, o.Slot)
	if err != nil {
		return 0, err
	}
	resnapshot := known && rec.LSN > 0 // the lake holds rows of an older slot
	ins, err := src.insertLSN(ctx)
	if err != nil {
		return 0, err
	}
	moved := resnapshot && src.lake(ins) < rec.LSN
	if moved && !si.active && !o.Resnapshot {
		return 0, fmt.Errorf("source %q is behind the lake: its WAL insert position %s is before the lake's watermark %s, so it is not the server the lake streamed from (moved to a new server, restored from a dump or to an earlier point in time): run cdclake ingest --resnapshot to reload every table from it",
			o.Name, pglogrepl.LSN(ins), pglogrepl.LSN(rec.LSN-src.base))
	}
	if si.exists && !si.active && o.Resnapshot {
		why := ""
		switch {
		case si.walStatus == "lost":
			why = "the replication slot was invalidated"
		case moved:
			why = "the source is behind the lake (moved or restored)"
		case resnapshot && src.lake(si.confirmed) > rec.LSN:
			why = "the replication slot is past the lake's watermark"
		}
		if why != "" {
			if _, err := src.conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", o.Slot); err != nil {
				return 0, fmt.Errorf("drop replication slot %q: %w", o.Slot, err)
			}
			o.Logger.Warn("dropped the replication slot; every table is reloaded", "slot", o.Slot, "why", why)
			si = slotInfo{}
		}
	}
	switch {
	case !si.exists && resnapshot && !o.Resnapshot:
		return 0, fmt.Errorf("replication slot %q is missing but the lake holds source %q up to LSN %s: changes after it are lost (run cdclake ingest --resnapshot to create a new slot and reload every table)",
			o.Slot, o.Name, pglogrepl.LSN(rec.LSN))
	case !si.exists:
		if resnapshot {
			if err := newEpoch(ctx, src, cat, o, rec, ins); err != nil {
				return 0, err
			}
		}
		repl, err := src.replication(ctx)
		if err != nil {
			return 0, err
		}
		defer repl.Close(context.Background())
		action := "NOEXPORT_SNAPSHOT"
		if o.Snapshot == "initial" {
			action = "EXPORT_SNAPSHOT"
		}
		if resnapshot {
			action = "EXPORT_SNAPSHOT"
		}
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, o.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			return 0, fmt.Errorf("replication slot %q was created by another process while this one started: another cdclake is reading this source (stop it, or use another --slot)", o.Slot)
		}
		if err != nil {
			return 0, fmt.Errorf("create replication slot %q: %w", o.Slot, err)
		}
		cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return 0, fmt.Errorf("parse slot consistent point: %w", err)
		}
		lsn := src.lake(uint64(cp))
		o.Logger.Info("created replication slot", "slot", o.Slot, "lsn", cp.String(), "lake_lsn", pglogrepl.LSN(lsn).String())
		if resnapshot && lsn <= rec.LSN {
			// newEpoch put every new position above the lake's
			return 0, fmt.Errorf("the new slot's position %s is not past the lake's watermark %s, which is never moved back",
				pglogrepl.LSN(lsn), pglogrepl.LSN(rec.LSN))
		}
		if res.SnapshotName != "" {
			// recorded before the source: a crash before a table's snapshot
			// is committed makes the next start reload it
			if err := markSnapshots(ctx, src, cat, o, lsn); err != nil {
				return 0, err
			}
		}
		if err := cat.PutSource(ctx, catalog.Source{Name: o.Name, Slot: o.Slot, Publication: o.Publication, LSN: lsn, LSNBase: src.base}); err != nil {
			return 0, err
		}
		if res.SnapshotName != "" {
			// the exported snapshot lives while repl stays open and idle
			if err := snapshot(res.SnapshotName, lsn, resnapshot); err != nil {
				return 0, err
			}
		}
		return lsn, nil
	case si.plugin != "pgoutput":
		return 0, fmt.Errorf("replication slot %q uses plugin %q, cdclake needs pgoutput (drop the slot or choose another --slot)", o.Slot, si.plugin)
	case si.walStatus == "lost":
		return 0, fmt.Errorf("replication slot %q was invalidated (wal_status lost: PostgreSQL removed WAL it still needed, see max_slot_wal_keep_size); changes are missing: run cdclake ingest --resnapshot to replace the slot and reload every table", o.Slot)
	case si.active:
		return 0, activeSlotError(o.Slot, si.pid)
	case !known:
		// the slot was created by a run that stopped before recording it:
		// nothing of the source is in the lake, so every table is reloaded
		if o.Snapshot == "initial" {
			if err := markSnapshots(ctx, src, cat, o, si.confirmed); err != nil {
				return 0, err
			}
		}
		if err := cat.PutSource(ctx, catalog.Source{Name: o.Name, Slot: o.Slot, Publication: o.Publication, LSN: si.confirmed}); err != nil {
			return 0, err
		}
		return si.confirmed, nil
	case src.lake(si.confirmed) > rec.LSN:
		return 0, fmt.Errorf("replication slot %q has confirmed LSN %s, past the lake's watermark %s for source %q: changes in between were acknowledged but are not in the lake (was the catalog restored from a backup? run cdclake ingest --resnapshot to replace the slot and reload every table)",
			o.Slot, pglogrepl.LSN(si.confirmed), pglogrepl.LSN(rec.LSN-src.base), o.Name)
	}
	return rec.LSN, nil
}

// newEpoch prepares a resnapshot of a source the lake holds rows of,
// before its new slot is created. When the server's WAL positions lie
// below what the lake holds (the source moved or was restored), the rows
// of the new copy and every later change would order before the old rows
// and be skipped as already committed: a new epoch starts, a new
// LSNBase that puts the server's positions from now on above every
// position in the lake. The reload's truncate markers then retire the old
// rows, and compaction and readers see positions that keep rising. The
// base is recorded before the slot exists, since a restart after that
// reads it from the record. ins is the server's WAL insert position,
// which the new slot's consistent point will not be below.
func newEpoch(ctx context.Context, src *source, cat *catalog.Catalog, o Options, rec catalog.Source, ins uint64) error {
	top, err := lakeTop(ctx, cat, rec)
	if err != nil {
		return err
	}
	if src.lake(ins) > top {
		return nil
	}
	src.base = top + 1 - ins
	o.Logger.Warn("the source's WAL positions are below the lake's (it moved to another server or was restored): a new epoch starts, above the lake's positions; every table is reloaded and the rows of the old history are retired",
		"server_lsn", pglogrepl.LSN(ins).String(), "lake_lsn", pglogrepl.LSN(top).String(), "lsn_base", src.base)
	rec.LSNBase = src.base
	return cat.PutSource(ctx, rec)
}

// lakeTop returns the highest position the lake holds for a source: its
// watermark, each table's snapshot record (a reload's rows are written
// below its position without moving any watermark) and each changelog's
// cdclake.source-lsn (a table commit can land before the watermark).
func lakeTop(ctx context.Context, cat *catalog.Catalog, rec catalog.Source) (uint64, error) {
	top := rec.LSN
	snaps, err := cat.Snapshots(ctx, rec.Name)
	if err != nil {
		return 0, err
	}
	for _, s := range snaps {
		top = max(top, s.LSN)
	}
	root := table.Identifier{lakeformat.IdentPart(rec.Name)}
	nss, err := cat.Iceberg().ListNamespaces(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("list the namespaces of %s: %w", rec.Name, err)
	}
	for _, ns := range nss {
		if len(ns) != 2 || ns[0] != root[0] {
			continue
		}
		for id, err := range cat.Iceberg().ListTables(ctx, ns) {
			if err != nil {
				return 0, fmt.Errorf("list the tables of %s: %w", strings.Join(ns, "."), err)
			}
			if !strings.HasSuffix(id[len(id)-1], lakeformat.ChangesSuffix) {
				continue
			}
			tbl, err := cat.Iceberg().LoadTable(ctx, id)
			if err != nil {
				return 0, fmt.Errorf("load %s: %w", strings.Join(id, "."), err)
			}
			top = max(top, tableLSN(tbl))
		}
	}
	return top, nil
}

// silenceLimit returns how long the replication connection may receive
// nothing, a keepalive asked for included, before the source is taken for
// gone: the longer of FlushTimeout and the server's wal_sender_timeout (a
// walsender busy with work it sends nothing for still sends a keepalive
// within it); none when wal_sender_timeout is 0 (the server sends none).
func (s *source) silenceLimit(ctx context.Context, o Options) (time.Duration, error) {
	var ms int64
	err := s.conn.QueryRow(ctx, "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'").Scan(&ms)
	if err != nil {
		return 0, fmt.Errorf("read wal_sender_timeout: %w", err)
	}
	if ms <= 0 {
		return 0, nil
	}
	return max(o.FlushTimeout, time.Duration(ms)*time.Millisecond), nil
}

// watchSlot reports the WAL the slot keeps on the source, every 15 s.
func watchSlot(ctx context.Context, cfg *pgx.ConnConfig, o Options) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		if conn == nil {
			conn, _ = pgx.ConnectConfig(ctx, cfg)
		}
		if conn != nil {
			var retained int64
			qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := conn.QueryRow(qctx, `SELECT coalesce(pg_current_wal_lsn() - restart_lsn, 0)::bigint
				FROM pg_replication_slots WHERE slot_name = $1`, o.Slot).Scan(&retained)
			cancel()
			if err == nil {
				o.Metrics.retainedWAL.WithLabelValues(o.Name).Set(float64(retained))
			} else if conn.IsClosed() {
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(15 * time.Second):
		}
	}
}

// markSnapshots records a running snapshot for every published table, so
// that reloadUnfinished reloads the tables whose snapshot never finished.
func markSnapshots(ctx context.Context, src *source, cat *catalog.Catalog, o Options, lsn uint64) error {
	names, err := src.publishedNames(ctx, o.Publication)
	if err != nil {
		return err
	}
	for _, n := range names {
		err := cat.PutSnapshot(ctx, catalog.TableSnapshot{Source: o.Name, Schema: n.Schema, Table: n.Table,
			State: catalog.SnapshotRunning, LSN: lsn, StartedAt: time.Now()})
		if err != nil {
			return err
		}
	}
	return nil
}

// markUncopied records a running snapshot, at pendingLSN, for every
// published table without a live snapshot record: a table added to the
// publication whose copy was never recorded (a stop after the stream had
// already committed its first changes), or one dropped and created again.
// Whether a table has its rows in the lake is decided by its record, never
// by its changelog existing, which the stream creates with its first
// change; reloadUnfinished then copies the tables marked.
func markUncopied(ctx context.Context, src *source, cat *catalog.Catalog, o Options) error {
	names, err := src.publishedNames(ctx, o.Publication)
	if err != nil {
		return err
	}
	lsn, err := src.pendingLSN(ctx)
	if err != nil {
		return err
	}
	snaps, err := cat.Snapshots(ctx, o.Name)
	if err != nil {
		return err
	}
	recorded := map[tableName]bool{}
	for _, s := range snaps {
		recorded[tableName{s.Schema, s.Table}] = s.State != catalog.SnapshotDropped
	}
	for _, n := range names {
		if recorded[n] {
			continue
		}
		o.Logger.Info("published table without a snapshot: copying its rows", "table", n.Schema+"."+n.Table)
		err := cat.PutSnapshot(ctx, catalog.TableSnapshot{Source: o.Name, Schema: n.Schema, Table: n.Table,
			State: catalog.SnapshotRunning, LSN: lsn, StartedAt: time.Now()})
		if err != nil {
			return err
		}
	}
	return nil
}

// tableName is a table's schema and name (unquoted).
type tableName struct{ Schema, Table string }

// publishedNames lists the tables of a publication, partitioned tables by
// their root.
func (s *source) publishedNames(ctx context.Context, publication string) ([]tableName, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT n.nspname, c.relname
		FROM pg_publication p, pg_publication_tables pt
		JOIN pg_class l ON l.oid = format('%I.%I', pt.schemaname, pt.tablename)::regclass
		JOIN pg_class c ON c.oid = CASE WHEN l.relispartition THEN pg_partition_root(l.oid) ELSE l.oid END
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1 AND pt.pubname = $1 AND (p.pubviaroot OR NOT l.relispartition)`, publication)
	if err != nil {
		return nil, fmt.Errorf("list published tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tableName])
	if err != nil {
		return nil, fmt.Errorf("list published tables: %w", err)
	}
	return names, nil
}

// recordCaughtUp records in the catalog that every transaction committed
// before at is in the lake, once the watermark has reached the catch-up
// target read after at (catchUpTarget).
func recordCaughtUp(ctx context.Context, cat *catalog.Catalog, o Options, target uint64, at time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.FlushTimeout)
	defer cancel()
	rec, err := cat.Source(ctx, o.Name)
	if err != nil {
		return err
	}
	if rec.LSN < target {
		return nil // stopped before the target was committed: nothing proven
	}
	return cat.SetCaughtUp(ctx, o.Name, at)
}

// catchUpTarget returns the position a catch-up run streams past, and the
// time read from now just before it: the WAL insert position, which lies
// past the commit record of every transaction that committed before that
// time, including one committed with
// synchronous_commit = off whose record is still in WAL buffers (the write
// position, pg_current_wal_lsn(), can be before it). A walsender sends only
// flushed WAL; the WAL writer flushes asynchronous commits within
// wal_writer_delay, but not the records of a transaction still open at the
// end of the WAL, so a small transaction committed here with a local
// synchronous commit (a logical decoding message, which pgoutput does not
// send) flushes everything up to past the target.
func (s *source) catchUpTarget(ctx context.Context, now func() time.Time, log *slog.Logger) (uint64, time.Time, error) {
	at := now()
	var lsn pglogrepl.LSN
	if err := s.conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()").Scan(&lsn); err != nil {
		return 0, time.Time{}, fmt.Errorf("read the WAL insert position: %w", err)
	}
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = local"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, 'cdclake', 'catch-up')")
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, time.Time{}, ctx.Err()
		}
		// the WAL writer still flushes every commit before the target
		log.Warn("could not flush the source's WAL for catch-up; it ends once PostgreSQL flushes it", "err", err)
	}
	return s.lake(uint64(lsn)), at, nil
}
