package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest/pgarrow"
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
	if o.CatchUp {
		if target, err = src.catchUpTarget(ctx, o.Logger); err != nil {
			return err
		}
	}
	args := []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", o.Publication)}
	if major, _ := strconv.Atoi(strings.SplitN(src.conn.PgConn().ParameterStatus("server_version"), ".", 2)[0]); major >= 14 && !o.protocol1 {
		// large transactions arrive while they run and are spooled here
		args = []string{"proto_version '2'", "streaming 'on'", args[1]}
	}
	err = pglogrepl.StartReplication(ctx, repl, o.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{PluginArgs: args})
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
	dec.attributes = src.attributes
	if o.Metrics != nil {
		go watchSlot(ctx, src.pgxConfig(), o)
	}
	st := newStream(repl, dec, sk, o, start, target)
	dec.lakeTypes = sk.lakePGTypes
	if o.Snapshot == "initial" {
		dec.onNew = func(schema, name string) { st.reloadNew(ctx, schema, name) }
		dec.onRewrite = func(schema, name, why string) error { return st.reloadRewritten(ctx, schema, name, why) }
	} else {
		dec.onRewrite = func(schema, name, why string) error {
			o.Logger.Warn("table rewritten in the source: rows in the lake may differ until it is reloaded (--snapshot never: run cdclake snapshot --table)",
				"table", schema+"."+name, "why", why)
			return nil
		}
	}
	// partitions changed without a change message (see PropPartitions)
	pw := newPartitionWatcher(st, src.pgxConfig(), o.Snapshot == "initial")
	if o.CatchUp {
		// one check, which run waits for
		st.bg.Add(1)
		go func() {
			defer st.bg.Done()
			pw.once(ctx)
		}()
		return st.run(ctx)
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
// the slot (and the source record) on first use, and returns the LSN to
// stream from.
func startPosition(ctx context.Context, src *source, cat *catalog.Catalog, o Options,
	snapshot func(snap string, lsn uint64, truncate bool) error) (uint64, error) {
	rec, err := cat.Source(ctx, o.Name)
	known := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNoSuchSource) {
		return 0, err
	}
	si, err := src.slotFree(ctx, o.Slot)
	if err != nil {
		return 0, err
	}
	if si.exists && si.walStatus == "lost" && o.Resnapshot {
		if _, err := src.conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", o.Slot); err != nil {
			return 0, fmt.Errorf("drop invalidated slot %q: %w", o.Slot, err)
		}
		o.Logger.Warn("dropped the invalidated replication slot; every table is reloaded", "slot", o.Slot)
		si = slotInfo{}
	}
	resnapshot := known && rec.LSN > 0 // the lake holds rows of an older slot
	switch {
	case !si.exists && resnapshot && !o.Resnapshot:
		return 0, fmt.Errorf("replication slot %q is missing but the lake holds source %q up to LSN %s: changes after it are lost (run cdclake ingest --resnapshot to create a new slot and reload every table)",
			o.Slot, o.Name, pglogrepl.LSN(rec.LSN))
	case !si.exists:
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
		lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return 0, fmt.Errorf("parse slot consistent point: %w", err)
		}
		o.Logger.Info("created replication slot", "slot", o.Slot, "lsn", lsn.String())
		if res.SnapshotName != "" {
			// recorded before the source: a crash before a table's snapshot
			// is committed makes the next start reload it
			if err := markSnapshots(ctx, src, cat, o, uint64(lsn)); err != nil {
				return 0, err
			}
		}
		if err := cat.PutSource(ctx, catalog.Source{Name: o.Name, Slot: o.Slot, Publication: o.Publication, LSN: uint64(lsn)}); err != nil {
			return 0, err
		}
		if res.SnapshotName != "" {
			// the exported snapshot lives while repl stays open and idle
			if err := snapshot(res.SnapshotName, uint64(lsn), resnapshot); err != nil {
				return 0, err
			}
		}
		return uint64(lsn), nil
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
	case si.confirmed > rec.LSN:
		return 0, fmt.Errorf("replication slot %q has confirmed LSN %s, past the lake's watermark %s for source %q: changes in between were acknowledged but are not in the lake (was the catalog restored from a backup? re-snapshot the source's tables)",
			o.Slot, pglogrepl.LSN(si.confirmed), pglogrepl.LSN(rec.LSN), o.Name)
	}
	return rec.LSN, nil
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
			err := conn.QueryRow(ctx, `SELECT coalesce(pg_current_wal_lsn() - restart_lsn, 0)::bigint
				FROM pg_replication_slots WHERE slot_name = $1`, o.Slot).Scan(&retained)
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

// catchUpTarget returns the position a catch-up run streams past: the WAL
// insert position, which lies past the commit record of every transaction
// that committed before now, including one committed with
// synchronous_commit = off whose record is still in WAL buffers (the write
// position, pg_current_wal_lsn(), can be before it). A walsender sends only
// flushed WAL; the WAL writer flushes asynchronous commits within
// wal_writer_delay, but not the records of a transaction still open at the
// end of the WAL, so a small transaction committed here with a local
// synchronous commit (a logical decoding message, which pgoutput does not
// send) flushes everything up to past the target.
func (s *source) catchUpTarget(ctx context.Context, log *slog.Logger) (uint64, error) {
	var lsn pglogrepl.LSN
	if err := s.conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()").Scan(&lsn); err != nil {
		return 0, fmt.Errorf("read the WAL insert position: %w", err)
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
			return 0, ctx.Err()
		}
		// the WAL writer still flushes every commit before the target
		log.Warn("could not flush the source's WAL for catch-up; it ends once PostgreSQL flushes it", "err", err)
	}
	return uint64(lsn), nil
}
