package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/lakeformat"
)

// Change is one row change a transaction made, as the changelog must
// show it: an insert (c) or update (u) with the row's version after it,
// or a delete (d). A key change is a delete of the old key and an update
// of the new one.
type Change struct {
	Table string
	Op    string
	ID    int64
	Ver   int64 // 0 for a delete
}

// Txn is one transaction of the workload.
type Txn struct {
	Worker  int
	N       int   // its place in the worker's commit order
	Xid     int64 // txid_current(): epoch and xid
	Changes []Change
	Large   bool // big enough for PostgreSQL to stream it while it runs
}

// Xid32 is the transaction id as pgoutput (and _cdc_xid) shows it.
func (t Txn) Xid32() int64 { return t.Xid & 0xFFFFFFFF }

// Workload writes transactions to tables of shape (id bigint primary key,
// ver bigint, pad text). Every update raises ver by one, so the changelog
// can be checked change by change. Each worker owns the ids equal to its
// number modulo Workers, so workers never wait for each other's locks and
// each keeps an exact model of its rows.
type Workload struct {
	URL         string   // a superuser URL of the source database
	Tables      []string // table names, in schema public
	Workers     int      // default 2
	Seed        uint64
	InitialRows int // rows per table that Setup loads before streaming starts
	// TxnRate is each worker's transactions per second (default 100).
	TxnRate float64
	// LargeProb is the share of large transactions (default 0.02) and
	// LargeRows how many rows one updates (default 1500): with
	// logical_decoding_work_mem = 64kB PostgreSQL streams them. Half of
	// them write pads six times as wide (about 1.5 kB a row, 2 MB for
	// 1500 rows), past ingest's smallest partial batch (1 MiB), so that
	// they are written in partial batches.
	LargeProb float64
	LargeRows int
	// Log, when set, records the errors the workload rode out.
	Log *Recorder

	mu      sync.Mutex
	txns    []Txn
	aborted []int64 // xids of transactions that must not show
	stats   WorkloadStats
}

// WorkloadStats counts what the workload did.
type WorkloadStats struct {
	Committed, RolledBack, Savepoints, Large int
	Ambiguous                                int // commits whose outcome was looked up
	Reconnects, Errors                       int
}

const padChunks = 1 // md5 chunks of a small transaction's pad

// padSQL is the pad of row id at version ver, n md5 chunks long.
func padSQL(id, ver string, n int) string {
	return fmt.Sprintf("repeat(md5((%s)::text || '/' || (%s)::text), %d)", id, ver, n)
}

func (w *Workload) workers() int {
	if w.Workers <= 0 {
		return 2
	}
	return w.Workers
}

// Setup creates the tables and loads the initial rows.
func (w *Workload) Setup(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, w.URL)
	if err != nil {
		return fmt.Errorf("connect workload: %w", err)
	}
	defer conn.Close(ctx)
	for _, t := range w.Tables {
		sql := fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, ver bigint NOT NULL, pad text NOT NULL)", t)
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create %s: %w", t, err)
		}
		if w.InitialRows > 0 {
			sql = fmt.Sprintf("INSERT INTO %s SELECT g, 1, %s FROM generate_series(1, %d) g", t, padSQL("g", "1", 2), w.InitialRows)
			if _, err := conn.Exec(ctx, sql); err != nil {
				return fmt.Errorf("load %s: %w", t, err)
			}
		}
	}
	return nil
}

// Run runs the workers until ctx is done. It fails only when the source
// contradicts the workload's model (a lost or doubled write on the
// source itself), never on connection loss, which it rides out.
func (w *Workload) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, w.workers())
	for i := range w.workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.worker(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Committed returns the committed transactions, and Aborted the xids of
// the transactions that rolled back.
func (w *Workload) Committed() []Txn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Txn(nil), w.txns...)
}

func (w *Workload) Aborted() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.aborted...)
}

// Stats returns the counts so far.
func (w *Workload) Stats() WorkloadStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

func (w *Workload) count(f func(*WorkloadStats)) {
	w.mu.Lock()
	f(&w.stats)
	w.mu.Unlock()
}

// model is one worker's exact knowledge of its rows: the live ids of each
// table with their versions, and an undo log for the open transaction.
type model struct {
	ids    [][]int64         // per table: live ids
	pos    []map[int64]int   // per table: index in ids
	ver    []map[int64]int64 // per table: version of a live id
	dead   [][]int64         // per table: deleted ids, to insert again
	next   []int64           // per table: next fresh id
	undo   []undo
	worker int
	stride int64
}

type undo struct {
	table  int
	id     int64
	exists bool
	ver    int64
}

func newModel(tables, worker, workers, initial int) *model {
	m := &model{worker: worker, stride: int64(workers)}
	for range tables {
		ids := []int64{}
		pos, ver := map[int64]int{}, map[int64]int64{}
		for id := int64(1); id <= int64(initial); id++ {
			if id%m.stride == int64(worker) {
				pos[id] = len(ids)
				ids = append(ids, id)
				ver[id] = 1
			}
		}
		first := int64(initial) + 1
		for first%m.stride != int64(worker) {
			first++
		}
		m.ids, m.pos, m.ver = append(m.ids, ids), append(m.pos, pos), append(m.ver, ver)
		m.dead, m.next = append(m.dead, nil), append(m.next, first)
	}
	return m
}

// set makes id live at ver (ver 0: deleted), remembering the old state.
func (m *model) set(t int, id, ver int64) {
	old, exists := m.ver[t][id]
	m.undo = append(m.undo, undo{t, id, exists, old})
	m.apply(t, id, ver)
}

func (m *model) apply(t int, id, ver int64) {
	_, exists := m.ver[t][id]
	switch {
	case ver == 0 && exists:
		i := m.pos[t][id]
		last := m.ids[t][len(m.ids[t])-1]
		m.ids[t][i], m.pos[t][last] = last, i
		m.ids[t] = m.ids[t][:len(m.ids[t])-1]
		delete(m.pos[t], id)
		delete(m.ver[t], id)
		m.dead[t] = append(m.dead[t], id)
	case ver > 0 && !exists:
		m.pos[t][id] = len(m.ids[t])
		m.ids[t] = append(m.ids[t], id)
		m.ver[t][id] = ver
	case ver > 0:
		m.ver[t][id] = ver
	}
}

// rollback undoes the changes after mark.
func (m *model) rollback(mark int) {
	for i := len(m.undo) - 1; i >= mark; i-- {
		u := m.undo[i]
		v := int64(0)
		if u.exists {
			v = u.ver
		}
		m.apply(u.table, u.id, v)
	}
	m.undo = m.undo[:mark]
}

func (m *model) newID(rng *rand.Rand, t int) int64 {
	if d := m.dead[t]; len(d) > 0 && rng.IntN(5) == 0 {
		i := rng.IntN(len(d))
		id := d[i]
		d[i] = d[len(d)-1]
		m.dead[t] = d[:len(d)-1]
		if _, live := m.ver[t][id]; !live {
			return id
		}
	}
	id := m.next[t]
	m.next[t] += m.stride
	return id
}

func (m *model) liveID(rng *rand.Rand, t int) (int64, bool) {
	if len(m.ids[t]) == 0 {
		return 0, false
	}
	return m.ids[t][rng.IntN(len(m.ids[t]))], true
}

// errFatal ends the workload: the source disagrees with the model (a
// bug in the workload or the source), or a transaction's outcome cannot
// be learned, so the log could not stay exact. Faults never cause it.
var errFatal = errors.New("workload cannot keep an exact log")

func (w *Workload) worker(ctx context.Context, n int) error {
	rng := rand.New(rand.NewPCG(w.Seed, uint64(n)+1))
	m := newModel(len(w.Tables), n, w.workers(), w.InitialRows)
	rate := w.TxnRate
	if rate <= 0 {
		rate = 100
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if conn == nil {
			c, err := pgx.Connect(ctx, w.URL)
			if err != nil {
				w.count(func(s *WorkloadStats) { s.Reconnects++ })
				continue // the source is down: try again at the next tick
			}
			conn = c
		}
		txn, committed, err := w.txn(ctx, conn, rng, m)
		if errors.Is(err, errFatal) {
			return fmt.Errorf("worker %d: %w", n, err)
		}
		if err != nil {
			w.count(func(s *WorkloadStats) { s.Errors++ })
			if w.Log != nil && ctx.Err() == nil {
				w.Log.Line(fmt.Sprintf("workload#%d", n), err.Error())
			}
			conn.Close(context.Background())
			conn = nil
		}
		w.mu.Lock()
		switch {
		case committed:
			txn.Worker, txn.N = n, seq
			seq++
			w.txns = append(w.txns, txn)
			w.stats.Committed++
			if txn.Large {
				w.stats.Large++
			}
		case txn.Xid != 0:
			w.aborted = append(w.aborted, txn.Xid)
		}
		w.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// txn runs one random transaction and reports whether it committed. On
// an error it has settled the outcome (looking up a commit that may or
// may not have happened) and brought the model in line with it.
func (w *Workload) txn(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, m *model) (Txn, bool, error) {
	var txn Txn
	m.undo = m.undo[:0]
	fail := func(err error) (Txn, bool, error) {
		m.rollback(0)
		return txn, false, err
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := conn.Exec(qctx, "BEGIN"); err != nil {
		return fail(err)
	}
	if err := conn.QueryRow(qctx, "SELECT txid_current()").Scan(&txn.Xid); err != nil {
		return fail(err)
	}
	large := w.LargeProb
	if large == 0 {
		large = 0.02
	}
	kind := rng.Float64()
	var err error
	switch {
	case kind < large:
		txn.Large = true
		err = w.large(qctx, conn, rng, m, &txn)
	case kind < large+0.07: // rolled back as a whole
		if err = w.ops(qctx, conn, rng, m, &txn, 1+rng.IntN(4)); err == nil {
			m.rollback(0)
			_, err = conn.Exec(qctx, "ROLLBACK")
			if err == nil {
				w.count(func(s *WorkloadStats) { s.RolledBack++ })
			}
			txn.Changes = nil
			return txn, false, err
		}
	case kind < large+0.15: // a savepoint rolled back in the middle
		w.count(func(s *WorkloadStats) { s.Savepoints++ })
		err = w.savepoint(qctx, conn, rng, m, &txn, func() error { return w.ops(qctx, conn, rng, m, &txn, 1+rng.IntN(3)) })
	default:
		err = w.ops(qctx, conn, rng, m, &txn, 1+rng.IntN(5))
	}
	if err != nil {
		return fail(err)
	}
	_, err = conn.Exec(qctx, "COMMIT")
	if err == nil {
		return txn, true, nil
	}
	// the commit may have happened: ask the server once it is back
	w.count(func(s *WorkloadStats) { s.Ambiguous++ })
	committed, serr := w.status(ctx, txn.Xid)
	if serr != nil {
		return fail(fmt.Errorf("%w: %v", errFatal, serr))
	}
	if !committed {
		return fail(err)
	}
	return txn, true, err
}

// status waits for the source and reports whether transaction xid
// committed. It keeps asking after the run is cancelled: the log must
// hold the outcome of every transaction.
func (w *Workload) status(ctx context.Context, xid int64) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for {
		var st *string
		conn, err := pgx.Connect(ctx, w.URL)
		if err == nil {
			err = conn.QueryRow(ctx, "SELECT txid_status($1)", xid).Scan(&st)
			conn.Close(context.Background())
		}
		switch {
		case err == nil && st == nil:
			return false, fmt.Errorf("%w: txid_status(%d) is null", errFatal, xid)
		case err == nil && *st != "in progress":
			return *st == "committed", nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("look up the outcome of transaction %d: %w", xid, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// savepoint runs body between SAVEPOINT and ROLLBACK TO SAVEPOINT, with
// other changes before and after.
func (w *Workload) savepoint(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, m *model, txn *Txn, body func() error) error {
	if err := w.ops(ctx, conn, rng, m, txn, 1+rng.IntN(2)); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SAVEPOINT s"); err != nil {
		return err
	}
	mark, keep := len(m.undo), len(txn.Changes)
	if err := body(); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
		return err
	}
	m.rollback(mark)
	txn.Changes = txn.Changes[:keep]
	return w.ops(ctx, conn, rng, m, txn, 1+rng.IntN(2))
}

// ops runs n random single-row changes.
func (w *Workload) ops(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, m *model, txn *Txn, n int) error {
	for range n {
		t := rng.IntN(len(w.Tables))
		name := w.Tables[t]
		id, live := m.liveID(rng, t)
		r := rng.IntN(100)
		switch {
		case !live || r < 30: // insert
			id := m.newID(rng, t)
			sql := fmt.Sprintf("INSERT INTO %s VALUES ($1, 1, %s)", name, padSQL("$1::bigint", "1", padChunks))
			if _, err := conn.Exec(ctx, sql, id); err != nil {
				return err
			}
			m.set(t, id, 1)
			txn.Changes = append(txn.Changes, Change{name, lakeformat.OpInsert, id, 1})
		case r < 75: // update
			want := m.ver[t][id] + 1
			sql := fmt.Sprintf("UPDATE %s SET ver = ver + 1, pad = %s WHERE id = $1 RETURNING ver", name, padSQL("id", "ver + 1", padChunks))
			if err := updated(conn.QueryRow(ctx, sql, id), want, name, id); err != nil {
				return err
			}
			m.set(t, id, want)
			txn.Changes = append(txn.Changes, Change{name, lakeformat.OpUpdate, id, want})
		case r < 92: // delete
			tag, err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE id = $1", name), id)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("%w: delete of %s id %d changed %d rows", errFatal, name, id, tag.RowsAffected())
			}
			m.set(t, id, 0)
			txn.Changes = append(txn.Changes, Change{name, lakeformat.OpDelete, id, 0})
		default: // key change: the row moves to a new id
			to := m.newID(rng, t)
			want := m.ver[t][id] + 1
			sql := fmt.Sprintf("UPDATE %s SET id = $2, ver = ver + 1, pad = %s WHERE id = $1 RETURNING ver", name, padSQL("$2::bigint", "ver + 1", padChunks))
			if err := updated(conn.QueryRow(ctx, sql, id, to), want, name, id); err != nil {
				return err
			}
			m.set(t, id, 0)
			m.set(t, to, want)
			txn.Changes = append(txn.Changes, Change{name, lakeformat.OpDelete, id, 0}, Change{name, lakeformat.OpUpdate, to, want})
		}
	}
	return nil
}

func updated(row pgx.Row, want int64, table string, id int64) error {
	var got int64
	err := row.Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: update of %s id %d found no row", errFatal, table, id)
	}
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s id %d has version %d, want %d", errFatal, table, id, got, want)
	}
	return nil
}

// large updates many rows of one table with wide pads in one statement,
// sometimes also in a savepoint that is rolled back (a subtransaction
// abort inside a streamed transaction).
func (w *Workload) large(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, m *model, txn *Txn) error {
	rows := w.LargeRows
	if rows <= 0 {
		rows = 1500
	}
	bulk := func() error {
		t := rng.IntN(len(w.Tables))
		seen := map[int64]bool{}
		var ids []int64
		for range rows {
			if id, ok := m.liveID(rng, t); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		pad := 8
		if rng.IntN(2) == 0 {
			pad = 48 // under PostgreSQL's TOAST threshold: sent whole
		}
		sql := fmt.Sprintf("UPDATE %s SET ver = ver + 1, pad = %s WHERE id = ANY($1) RETURNING id, ver", w.Tables[t], padSQL("id", "ver + 1", pad))
		res, err := conn.Query(ctx, sql, ids)
		if err != nil {
			return err
		}
		n := 0
		for res.Next() {
			var id, ver int64
			if err := res.Scan(&id, &ver); err != nil {
				res.Close()
				return err
			}
			if want := m.ver[t][id] + 1; ver != want || !seen[id] {
				res.Close()
				return fmt.Errorf("%w: bulk update of %s id %d gave version %d, want %d", errFatal, w.Tables[t], id, ver, want)
			}
			m.set(t, id, ver)
			txn.Changes = append(txn.Changes, Change{w.Tables[t], lakeformat.OpUpdate, id, ver})
			n++
		}
		if err := res.Err(); err != nil {
			return err
		}
		if n != len(ids) {
			return fmt.Errorf("%w: bulk update of %s changed %d rows, want %d", errFatal, w.Tables[t], n, len(ids))
		}
		return nil
	}
	if rng.IntN(3) == 0 {
		if err := w.savepoint(ctx, conn, rng, m, txn, bulk); err != nil {
			return err
		}
	}
	if err := bulk(); err != nil {
		return err
	}
	return w.ops(ctx, conn, rng, m, txn, 1+rng.IntN(3))
}
