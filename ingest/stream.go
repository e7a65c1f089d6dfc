package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdclake/cdclake/catalog"
)

// stream runs one replication connection: the receiving goroutine decodes
// into the buffer; a ticker cuts batches by age and reports the position;
// the flusher commits batches in order.
//
// Order: a batch is cut and queued in one critical section of mu (see
// enqueue), so the queue holds batches in the order they were cut, which
// is the order of their end LSNs, whichever goroutine cut them; the
// flusher commits them in queue order. The position acknowledged to
// PostgreSQL (durable) is the end of the last batch whose watermark is in
// the catalog: a partial batch (part of a large transaction, not
// committed) never moves it.
type stream struct {
	conn   *pgconn.PgConn
	sink   *sink
	o      Options
	log    *slog.Logger
	target uint64 // catch-up: stop once the stream has passed it
	// base turns the server's WAL positions into lake positions
	// (catalog.Source.LSNBase): every position here is a lake position,
	// converted where a message arrives (toLake) and where the position
	// is reported back (sendStatus)
	base uint64

	mu         sync.Mutex // guards dec, walEnd, firstRowAt, lastIdle
	dec        *decoder
	walEnd     uint64 // everything before it has been received
	firstRowAt time.Time
	lastIdle   time.Time

	qmu    sync.Mutex // guards queue and closed; taken inside mu, never the reverse
	qcond  *sync.Cond // on qmu: the queue changed
	queue  []*batch   // cut and not yet done by the flusher (the first is being committed)
	closed bool       // no more batches

	sendMu   sync.Mutex // one writer on the connection at a time
	durable  atomic.Uint64
	rows     atomic.Int64 // rows committed
	parser   rowParser
	stopping atomic.Bool
	caughtUp atomic.Bool

	// silence is how long the receiver may wait for a message, a
	// keepalive asked for at half of it included, before the source is
	// taken for gone and the stream fails (0: no limit); readSince is
	// when the wait began (unix ns, 0 while not waiting)
	silence   time.Duration
	readSince atomic.Int64

	failOnce sync.Once
	failErr  error         // the first failure (flush or background snapshot)
	failed   chan struct{} // closed at the first failure

	flushed  chan struct{}  // closed when the flusher has stopped
	bg       sync.WaitGroup // snapshots of tables added while streaming
	reloadMu sync.Mutex     // one reload of a rewritten table at a time

	// stopBg, when set, cancels the context of the work in bg: run calls
	// it once the stream failed, so that a reload waiting on a lake that
	// does not answer cannot keep it from returning (an unfinished
	// reload's running record redoes it at the next start)
	stopBg context.CancelFunc

	// transactions streamed while in progress (receiver goroutine only)
	spool     *spool
	inStream  bool
	streamXid uint32
}

func newStream(conn *pgconn.PgConn, dec *decoder, sk *sink, o Options, start, target uint64) *stream {
	st := &stream{conn: conn, sink: sk, o: o, log: o.Logger, target: target, dec: dec,
		walEnd: start, failed: make(chan struct{}), flushed: make(chan struct{}), lastIdle: time.Now()}
	st.qcond = sync.NewCond(&st.qmu)
	st.durable.Store(start)
	st.spool = newSpool(o.SpillDir, o.MemoryBudget/4)
	dec.endLSN = start
	return st
}

func (st *stream) run(ctx context.Context) error {
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	defer st.spool.close()
	go func() {
		defer close(st.flushed)
		st.flusher(flushCtx)
	}()
	tickDone := make(chan struct{})
	stopTick := make(chan struct{})
	go func() {
		defer close(tickDone)
		st.ticker(stopTick)
	}()
	// wake the receiver when asked to stop or when a flush failed
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-ctx.Done():
		case <-st.failed:
		case <-stopTick:
			return
		}
		st.stop()
	}()

	recvErr := st.receive(ctx)
	close(stopTick)
	<-tickDone
	<-watchDone
	st.mu.Lock()
	split := st.dec.inTx && st.dec.tx.split
	st.mu.Unlock()
	if split {
		// part of the open transaction is written into the tables' open
		// Iceberg transactions: committing them now would commit it in
		// part. Nothing is committed; the next start receives it again.
		st.log.Info("stopped inside a large transaction: it is received again at the next start")
	}
	if st.failure() == nil && recvErr == nil && !split {
		// a clean stop: commit what is complete, then acknowledge it
		st.mu.Lock()
		st.dec.abort()
		b := st.dec.cut(false)
		if b.rows > 0 || b.endLSN > st.durable.Load() {
			st.enqueue(b)
		}
		if st.caughtUp.Load() && st.walEnd > b.endLSN {
			st.enqueue(&batch{endLSN: st.walEnd, commitTime: b.commitTime})
		}
		st.mu.Unlock()
	}
	st.closeQueue()
	<-st.flushed
	if (recvErr != nil || st.failure() != nil) && st.stopBg != nil {
		st.stopBg()
	}
	st.bg.Wait()
	flushFailed := st.failure()
	_ = st.conn.Conn().SetReadDeadline(time.Time{})
	if err := st.sendStatus(false); err != nil && recvErr == nil && flushFailed == nil {
		st.log.Warn("final acknowledgement not sent", "err", err)
	}
	st.logProgress(0, 0)
	if flushFailed != nil {
		return flushFailed
	}
	return recvErr
}

// stop makes the receiver return at its next read.
func (st *stream) stop() {
	st.stopping.Store(true)
	_ = st.conn.Conn().SetReadDeadline(time.Now())
}

func (st *stream) receive(ctx context.Context) error {
	for !st.stopping.Load() {
		st.readSince.Store(time.Now().UnixNano())
		raw, err := st.conn.ReceiveMessage(context.Background())
		st.readSince.Store(0)
		if err != nil {
			if st.stopping.Load() {
				if pgconn.Timeout(err) {
					return nil
				}
			}
			return fmt.Errorf("receive replication message: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			if err := st.copyData(ctx, m.Data); err != nil {
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					return nil // asked to stop during a look-up: a clean stop
				}
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m))
		}
	}
	return nil
}

func (st *stream) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parse keepalive: %w", err)
		}
		st.mu.Lock()
		st.walEnd = max(st.walEnd, uint64(ka.ServerWALEnd)+st.base)
		st.checkCaughtUp()
		st.mu.Unlock()
		if ka.ReplyRequested {
			return st.sendStatus(false)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("parse xlogdata: %w", err)
		}
		var msg pglogrepl.Message
		if st.inStream { // spooled as bytes; its xids are needed
			msg, err = parseMessage(xld.WALData, true)
		} else {
			msg, err = st.parser.parse(xld.WALData, false)
		}
		if err != nil {
			return fmt.Errorf("parse pgoutput message at %s: %w", xld.WALStart, err)
		}
		st.toLake(msg)
		if done, err := st.streamed(ctx, msg, xld.WALData); done || err != nil {
			return err
		}
		msg = unwrap(msg)
		st.mu.Lock()
		err = st.dec.handle(ctx, msg)
		queued := false
		if err == nil {
			if st.dec.rows > 0 && st.firstRowAt.IsZero() {
				st.firstRowAt = time.Now()
			}
			if _, ok := msg.(*pglogrepl.CommitMessage); ok {
				st.walEnd = max(st.walEnd, st.dec.endLSN)
				queued = st.cutIfDue()
				st.checkCaughtUp()
			} else {
				// a transaction sent whole at its commit (protocol 1, or
				// one PostgreSQL did not stream) is written in chunks
				queued = st.cutPartial()
			}
		}
		st.mu.Unlock()
		if err != nil {
			return err
		}
		if queued {
			st.waitRoom()
		}
	}
	return nil
}

// toLake turns the WAL positions a message carries into lake positions.
func (st *stream) toLake(msg pglogrepl.Message) {
	b := pglogrepl.LSN(st.base)
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		m.FinalLSN += b
	case *pglogrepl.CommitMessage:
		m.CommitLSN += b
		m.TransactionEndLSN += b
	case *pglogrepl.StreamCommitMessageV2:
		m.CommitLSN += b
		m.TransactionEndLSN += b
	}
}

// parseMessage parses a pgoutput message. pglogrepl panics on some
// malformed bytes; those become an error like any other parse failure.
func parseMessage(data []byte, inStream bool) (msg pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, errors.New("empty pgoutput message")
	}
	if err := checkTuples(data, inStream); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed pgoutput message %q: %v", data[0], r)
		}
	}()
	return pglogrepl.ParseV2(data, inStream)
}

// streamed handles the messages of transactions streamed while in
// progress: it spools their changes and replays them at commit. It
// reports whether msg was such a message.
func (st *stream) streamed(ctx context.Context, msg pglogrepl.Message, raw []byte) (bool, error) {
	switch m := msg.(type) {
	case *pglogrepl.StreamStartMessageV2:
		st.inStream, st.streamXid = true, m.Xid
	case *pglogrepl.StreamStopMessageV2:
		st.inStream = false
	case *pglogrepl.StreamAbortMessageV2:
		return true, st.spool.abort(m.Xid, m.SubXid)
	case *pglogrepl.StreamCommitMessageV2:
		return true, st.replay(ctx, m)
	default:
		if !st.inStream {
			return false, nil
		}
		if rel, ok := msg.(*pglogrepl.RelationMessageV2); ok {
			// the schema applies from here on, to this and other transactions
			st.mu.Lock()
			err := st.dec.relation(ctx, &rel.RelationMessage)
			st.mu.Unlock()
			if err != nil {
				return true, err
			}
		}
		return true, st.spool.add(st.streamXid, subXid(msg, st.streamXid), raw)
	}
	return true, nil
}

// subXid returns the (sub)transaction an in-stream change belongs to.
func subXid(msg pglogrepl.Message, top uint32) uint32 {
	switch m := msg.(type) {
	case *pglogrepl.InsertMessageV2:
		return m.Xid
	case *pglogrepl.UpdateMessageV2:
		return m.Xid
	case *pglogrepl.DeleteMessageV2:
		return m.Xid
	case *pglogrepl.TruncateMessageV2:
		return m.Xid
	case *pglogrepl.RelationMessageV2:
		return m.Xid
	}
	return top
}

// replay decodes a committed streamed transaction from the spool. Its rows
// go to the flusher in partial batches of bounded size, committed to the
// lake together with the batch that ends the transaction.
func (st *stream) replay(ctx context.Context, m *pglogrepl.StreamCommitMessageV2) error {
	defer st.spool.drop(m.Xid)
	st.mu.Lock()
	live := maps.Clone(st.dec.rels)
	st.dec.begin(m.Xid, uint64(m.CommitLSN), m.CommitTime)
	st.mu.Unlock()
	err := st.spool.each(m.Xid, func(raw []byte) error {
		msg, err := st.parser.parse(raw, true)
		if err != nil {
			return fmt.Errorf("parse spilled message: %w", err)
		}
		st.mu.Lock()
		err = st.dec.handle(ctx, unwrap(msg))
		queued := false
		if err == nil {
			queued = st.cutPartial()
		}
		st.mu.Unlock()
		if queued {
			st.waitRoom()
		}
		return err
	})
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.dec.commit(uint64(m.TransactionEndLSN), m.CommitTime)
	st.dec.rels = live // relation messages replayed from the spool were applied when received
	st.walEnd = max(st.walEnd, st.dec.endLSN)
	if st.dec.rows > 0 && st.firstRowAt.IsZero() {
		st.firstRowAt = time.Now()
	}
	queued := st.cutIfDue()
	st.checkCaughtUp()
	st.mu.Unlock()
	if queued {
		st.waitRoom()
	}
	return nil
}

// reloadNew snapshots a table that joined the publication while streaming
// (unless a snapshot of it is recorded already), beside the stream.
func (st *stream) reloadNew(ctx context.Context, schema, name string) {
	st.bg.Add(1)
	go func() {
		defer st.bg.Done()
		err := func() error {
			lctx, cancel := within(ctx, st.o.FlushTimeout)
			snaps, err := st.sink.cat.Snapshots(lctx, st.o.Name)
			cancel()
			if err != nil {
				return timedOut(lctx, err)
			}
			for _, s := range snaps {
				if s.Schema == schema && s.Table == name {
					return nil
				}
			}
			st.log.Info("new table: snapshotting its existing rows", "table", schema+"."+name)
			return Reload(ctx, st.sink.cat, st.o, []string{pgx.Identifier{schema, name}.Sanitize()})
		}()
		if err != nil && ctx.Err() == nil {
			st.fail(fmt.Errorf("snapshot of new table %s.%s: %w", schema, name, err))
		}
	}()
}

// reloadRewritten reloads a table whose rows PostgreSQL rewrote (see
// rewritten), beside the stream (under ctx). A running snapshot record is
// written first, under rctx (the Relation message's deadline), so that a
// crash before the reload is done makes the next start reload the table
// (reloadUnfinished). Reloads run one at a time.
func (st *stream) reloadRewritten(ctx, rctx context.Context, schema, name, why string) error {
	err := st.sink.cat.PutSnapshot(rctx, catalog.TableSnapshot{Source: st.o.Name, Schema: schema, Table: name,
		State: catalog.SnapshotRunning, LSN: st.dec.endLSN, StartedAt: time.Now()})
	if err != nil {
		return fmt.Errorf("record the reload of %s.%s: %w", schema, name, err)
	}
	st.log.Warn("table rewritten in the source: reloading it", "table", schema+"."+name, "why", why)
	// Rows of the old schema received before this point must reach the
	// lake before the reload evolves the changelog to the new one, or they
	// would arrive after it and start yet another column version.
	before := st.walEnd
	st.bg.Add(1)
	go func() {
		defer st.bg.Done()
		for st.durable.Load() < before {
			select {
			case <-ctx.Done():
				return
			case <-st.flushed:
				if st.durable.Load() < before {
					return // stopped first: the running record reloads it at the next start
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		st.reloadMu.Lock()
		defer st.reloadMu.Unlock()
		err := Reload(ctx, st.sink.cat, st.o, []string{pgx.Identifier{schema, name}.Sanitize()})
		if err != nil && ctx.Err() == nil {
			st.fail(fmt.Errorf("reload of rewritten table %s.%s: %w", schema, name, err))
		}
	}()
	return nil
}

// checkCaughtUp stops a catch-up run once every transaction that
// committed before the start has been received. Called with mu held.
func (st *stream) checkCaughtUp() {
	if st.target > 0 && !st.dec.inTx && st.walEnd >= st.target && !st.caughtUp.Load() {
		st.caughtUp.Store(true)
		st.stop()
	}
}

// cutIfDue cuts and queues a batch when one is due and the flusher is
// idle, or when the buffer is over its limit (the caller then waits in
// waitRoom). It reports whether it queued one. Called with mu held,
// between transactions.
func (st *stream) cutIfDue() bool {
	d := st.dec
	if d.rows == 0 {
		return false
	}
	due := d.rows >= st.o.FlushRows || d.bytes >= st.o.FlushBytes || time.Since(st.firstRowAt) >= st.o.FlushAge
	if !due || (st.busy() && d.bytes < st.o.MaxBufferBytes) {
		return false
	}
	st.firstRowAt = time.Time{}
	st.enqueue(d.cut(false))
	return true
}

// cutPartial cuts and queues a partial batch when the transaction being
// received has buffered a chunk since it began or since the last cut (a
// sixteenth of the memory budget, at least 1 MiB): a large transaction is
// written while it is received and committed with the batch that ends
// it; the small ones before it go along. It reports whether it queued
// one (the caller then waits in waitRoom). Called with mu held.
func (st *stream) cutPartial() bool {
	d := st.dec
	if !d.inTx || d.bytes-d.txStart < max(st.o.MemoryBudget/16, 1<<20) {
		return false
	}
	st.enqueue(d.cut(true))
	return true
}

// enqueue hands a batch to the flusher. Called with mu held, in the same
// critical section that cut the batch: batches are queued in the order
// they were cut, so none can overtake another.
func (st *stream) enqueue(b *batch) {
	st.qmu.Lock()
	st.queue = append(st.queue, b)
	st.qcond.Broadcast()
	st.qmu.Unlock()
}

// busy reports whether the flusher has a batch.
func (st *stream) busy() bool {
	st.qmu.Lock()
	defer st.qmu.Unlock()
	return len(st.queue) > 0
}

// waitRoom waits while the flusher is committing a batch and another
// waits behind it, bounding what is cut and not committed. Called
// without mu.
func (st *stream) waitRoom() {
	st.qmu.Lock()
	for len(st.queue) > 2 {
		st.qcond.Wait()
	}
	st.qmu.Unlock()
}

// closeQueue tells the flusher that no batch follows the queued ones.
func (st *stream) closeQueue() {
	st.qmu.Lock()
	st.closed = true
	st.qcond.Broadcast()
	st.qmu.Unlock()
}

// next returns the batch to commit next, nil once the queue is closed and
// empty; done removes it from the queue.
func (st *stream) next() *batch {
	st.qmu.Lock()
	defer st.qmu.Unlock()
	for len(st.queue) == 0 && !st.closed {
		st.qcond.Wait()
	}
	if len(st.queue) == 0 {
		return nil
	}
	return st.queue[0]
}

func (st *stream) done() {
	st.qmu.Lock()
	st.queue[0] = nil
	st.queue = st.queue[1:]
	st.qcond.Broadcast()
	st.qmu.Unlock()
}

// fail records the stream's first failure and wakes run; it never waits.
func (st *stream) fail(err error) {
	st.failOnce.Do(func() {
		st.failErr = err
		close(st.failed)
	})
}

// failure returns the stream's first failure, if any.
func (st *stream) failure() error {
	select {
	case <-st.failed:
		return st.failErr
	default:
		return nil
	}
}

func (st *stream) flusher(ctx context.Context) {
	failed := false
	for b := st.next(); b != nil; b = st.next() {
		if !failed {
			start := time.Now()
			if err := st.commitWithin(ctx, b); err != nil {
				failed = true
				st.fail(fmt.Errorf("flush up to LSN %s: %w", pglogrepl.LSN(b.endLSN), err))
			} else if !b.partial {
				// the batch's watermark is in the catalog: acknowledge it
				st.durable.Store(b.endLSN)
				st.rows.Add(int64(b.rows))
				if m := st.o.Metrics; m != nil {
					src := st.o.Name
					m.rows.WithLabelValues(src).Add(float64(b.rows))
					m.bytes.WithLabelValues(src).Add(float64(b.bytes))
					m.flushes.WithLabelValues(src).Inc()
					m.flushTime.WithLabelValues(src).Observe(time.Since(start).Seconds())
					if b.rows > 0 {
						m.commitTime.WithLabelValues(src).Observe(time.Since(b.commitTime).Seconds())
					}
				}
				if b.rows > 0 {
					st.log.Debug("flushed", "rows", b.rows, "tables", len(b.tables), "lsn", pglogrepl.LSN(b.endLSN).String(), "took", time.Since(start))
				}
				if err := st.sendStatus(false); err != nil {
					st.log.Debug("status update", "err", err)
				}
			} else {
				st.rows.Add(int64(b.rows))
				st.log.Debug("partial batch written", "rows", b.rows, "tables", len(b.tables), "took", time.Since(start))
			}
		}
		for _, tb := range b.tables {
			tb.release()
		}
		st.done()
	}
}

// ticker cuts batches by age, lets an idle source's watermark follow the
// server, reports the position and logs progress.
func (st *stream) ticker(stop <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	lastStatus, lastLog := time.Now(), time.Now()
	lastRows := st.rows.Load()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			// never wait here: this goroutine reports status
			st.mu.Lock()
			if !st.dec.inTx && !st.busy() && !st.cutIfDue() && st.dec.rows == 0 && st.walEnd > st.durable.Load() &&
				(st.target > 0 || now.Sub(st.lastIdle) >= st.o.IdleAckInterval) {
				st.enqueue(&batch{endLSN: st.walEnd, commitTime: st.dec.commitTime})
				st.dec.endLSN = st.walEnd
				st.lastIdle = now
			}
			st.mu.Unlock()
			// a source silent for half the limit is asked for a keepalive
			ping := false
			if since := st.readSince.Load(); since != 0 && st.silence > 0 {
				waited := now.Sub(time.Unix(0, since))
				if waited > st.silence {
					st.fail(fmt.Errorf("the source sent nothing for %s, not even the keepalive asked for (limit: the longer of --flush-timeout and its wal_sender_timeout)", waited.Round(time.Millisecond)))
				}
				ping = waited >= st.silence/2
			}
			if now.Sub(lastStatus) >= st.o.StatusInterval || ((st.target > 0 || ping) && now.Sub(lastStatus) >= 200*time.Millisecond) {
				// in catch-up, ask for a keepalive so an idle server tells its position
				if err := st.sendStatus(st.target > 0 || ping); err != nil {
					st.log.Debug("status update", "err", err)
				}
				lastStatus = now
			}
			if now.Sub(lastLog) >= st.o.ProgressInterval {
				rows := st.rows.Load()
				st.logProgress(rows-lastRows, now.Sub(lastLog))
				lastRows, lastLog = rows, now
			}
		}
	}
}

func (st *stream) logProgress(rows int64, over time.Duration) {
	st.mu.Lock()
	walEnd, skipped, commitTime := st.walEnd, st.dec.skipped, st.dec.commitTime
	st.mu.Unlock()
	durable := st.durable.Load()
	rate := 0.0
	if over > 0 {
		rate = float64(rows) / over.Seconds()
	}
	lag := uint64(0)
	if walEnd > durable {
		lag = walEnd - durable
	}
	if m := st.o.Metrics; m != nil {
		m.lagBytes.WithLabelValues(st.o.Name).Set(float64(lag))
		if !commitTime.IsZero() {
			m.lagSeconds.WithLabelValues(st.o.Name).Set(time.Since(commitTime).Seconds())
		}
	}
	st.log.Info("progress", "rows", st.rows.Load(), "rows_per_s", int64(rate),
		"committed_lsn", pglogrepl.LSN(durable).String(), "lag_bytes", lag, "skipped_replayed", skipped)
}

// sendStatus reports the durable position as the slot's flush position;
// PostgreSQL may then recycle the WAL before it.
func (st *stream) sendStatus(reply bool) error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	d := pglogrepl.LSN(st.durable.Load() - st.base)
	return pglogrepl.SendStandbyStatusUpdate(context.Background(), st.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: d, WALFlushPosition: d, WALApplyPosition: d, ReplyRequested: reply,
	})
}

// checkTuples walks the tuples of an insert, update or delete message and
// refuses one whose lengths run past the message: pglogrepl allocates the
// length it reads (up to 4 GiB) before it finds the bytes missing.
func checkTuples(data []byte, inStream bool) error {
	switch data[0] {
	case 'I', 'U', 'D':
	default:
		return nil
	}
	short := fmt.Errorf("malformed pgoutput message %q: a tuple runs past its %d bytes", data[0], len(data))
	i := 5 // type, relation id
	if inStream {
		i += 4 // xid
	}
	for i < len(data) {
		i++ // N, K or O
		if i+2 > len(data) {
			return short
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		i += 2
		for range n {
			if i >= len(data) {
				return short
			}
			kind := data[i]
			i++
			if kind == 't' || kind == 'b' {
				if i+4 > len(data) {
					return short
				}
				l := int(binary.BigEndian.Uint32(data[i:]))
				i += 4
				if l > len(data)-i {
					return short
				}
				i += l
			}
		}
	}
	return nil
}

// errNoAnswer is the cause of a deadline set by within.
var errNoAnswer = errors.New("no answer")

// within bounds by d (FlushTimeout) the requests to the lake or the
// source that one step of the receive path makes while the stream waits
// for it (a Relation message's look-ups, a record in the catalog): one
// that never answers fails the stream, and the process exits to be
// restarted, instead of stalling it for good. d <= 0 sets none (a
// decoder used on its own, in tests).
func within(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w within %s (--flush-timeout)", errNoAnswer, d))
}

// timedOut returns err, saying so when a deadline set by within on ctx
// is why it happened.
func timedOut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); errors.Is(cause, errNoAnswer) && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// commitWithin commits a batch, giving up after FlushTimeout: a lake
// request that never answers must not stall ingest for good. After a
// timeout the flusher has failed and never uses the sink again, so the
// abandoned commit cannot race a later one; Run returns the error and
// the process exits (its service manager restarts it).
func (st *stream) commitWithin(ctx context.Context, b *batch) error {
	ctx, cancel := context.WithTimeout(ctx, st.o.FlushTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- st.sink.commit(ctx, b) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the lake did not answer within %s (--flush-timeout)", st.o.FlushTimeout)
	}
}
