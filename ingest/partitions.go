package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// Partitions of a partitioned table. The publication publishes through
// the partition root (publish_via_partition_root), so the changes of
// every partition arrive as changes of the root table. PostgreSQL then
// sends nothing for TRUNCATE of one partition, DETACH PARTITION, DROP of a
// partition, or ATTACH PARTITION of a table that already holds rows: the
// rows that go or come change nothing in the stream.
//
// A changelog table of a partitioned root therefore records, in the table
// property lakeformat.PropPartitions, the partition set its rows were copied from:
// the leaf partitions (oid, relfilenode), read under the exported
// snapshot of the copy and committed with the copy. A watcher beside the
// stream reads the current set every PartitionCheckInterval (and once at
// the start); when it differs from the recorded one (a partition added or
// removed, or its relfilenode changed, which TRUNCATE, VACUUM FULL and
// CLUSTER do), it logs why and reloads the table (Reload), whose copy
// records the new set. A stop before the reload is committed leaves the
// old set recorded, so the next start sees the change again. VACUUM FULL
// and CLUSTER of a partition cost a reload that changes nothing.

// partitionLeaf is one leaf partition of a partitioned table.
type partitionLeaf struct {
	OID      uint32 `json:"oid"`
	Filenode uint32 `json:"filenode"`
	Name     string `json:"name"` // schema.table, for the logs
}

// partitionSet is a partitioned table's leaf partitions, ordered by oid.
type partitionSet []partitionLeaf

// encode returns the set as stored in lakeformat.PropPartitions.
func (p partitionSet) encode() string {
	if p == nil {
		p = partitionSet{}
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func decodePartitionSet(s string) (partitionSet, error) {
	var p partitionSet
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("read %s: %w", lakeformat.PropPartitions, err)
	}
	return p, nil
}

// changes says how the set now differs from was (names are not compared:
// a renamed partition holds the same rows); "" when it does not.
func (p partitionSet) changes(was partitionSet) string {
	old := map[uint32]partitionLeaf{}
	for _, l := range was {
		old[l.OID] = l
	}
	var added, removed, rewritten []string
	for _, l := range p {
		o, ok := old[l.OID]
		switch {
		case !ok:
			added = append(added, l.Name)
		case o.Filenode != l.Filenode:
			rewritten = append(rewritten, l.Name)
		}
		delete(old, l.OID)
	}
	for _, l := range was {
		if _, ok := old[l.OID]; ok {
			removed = append(removed, l.Name)
		}
	}
	var why []string
	if len(added) > 0 {
		why = append(why, "partitions attached: "+strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		why = append(why, "partitions detached or dropped: "+strings.Join(removed, ", "))
	}
	if len(rewritten) > 0 {
		why = append(why, "partitions truncated or rewritten (TRUNCATE, VACUUM FULL, CLUSTER): "+strings.Join(rewritten, ", "))
	}
	return strings.Join(why, "; ")
}

// partitionSets reads the leaf partitions of those of the tables (oids)
// that are partitioned. It reads pg_inherits and pg_class with SQL, so
// in a transaction set to an exported snapshot it sees the partitions as
// of that snapshot (pg_partition_tree would read the latest catalog).
func partitionSets(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, oids []uint32) (map[uint32]partitionSet, error) {
	rows, err := q.Query(ctx, `WITH RECURSIVE tree(root, relid) AS (
			SELECT c.oid, c.oid FROM pg_class c WHERE c.oid = ANY($1::oid[]) AND c.relkind = 'p'
			UNION ALL
			SELECT t.root, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.relid)
		SELECT t.root, c.oid, c.relkind <> 'p', c.relfilenode, format('%I.%I', n.nspname, c.relname)
		FROM tree t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
		ORDER BY 1, 2`, oids)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	out := map[uint32]partitionSet{}
	for rows.Next() {
		var root uint32
		var leaf partitionLeaf
		var isLeaf bool
		if err := rows.Scan(&root, &leaf.OID, &isLeaf, &leaf.Filenode, &leaf.Name); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		if _, ok := out[root]; !ok {
			out[root] = partitionSet{}
		}
		if isLeaf && leaf.OID != root {
			out[root] = append(out[root], leaf)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// partitionSetsAt reads partitionSets under the exported snapshot snap.
func (s *source) partitionSetsAt(ctx context.Context, snap string, oids []uint32) (map[uint32]partitionSet, error) {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin partition listing: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET TRANSACTION SNAPSHOT '%s'", snap)); err != nil {
		return nil, fmt.Errorf("set transaction snapshot: %w", err)
	}
	return partitionSets(ctx, tx, oids)
}

// partitionQueryTimeout bounds each query of the partition watcher.
const partitionQueryTimeout = 30 * time.Second

// partitionWatcher compares the partition sets of the published
// partitioned tables with the sets recorded in the lake, and reloads a
// table whose set changed (see lakeformat.PropPartitions).
type partitionWatcher struct {
	st     *stream
	cfg    *pgx.ConnConfig
	reload bool // false (--snapshot never): only warn
	conn   *pgx.Conn
	// seen is, by root oid, the current set found equal to the recorded
	// one (or warned about): it is compared with the lake again only once
	// it changes.
	seen map[uint32]string
	// warned holds new tables not added to the publication, warned about once
	warned map[string]bool
}

func newPartitionWatcher(st *stream, cfg *pgx.ConnConfig, reload bool) *partitionWatcher {
	return &partitionWatcher{st: st, cfg: cfg, reload: reload, seen: map[uint32]string{}, warned: map[string]bool{}}
}

// run checks at once and then every PartitionCheckInterval until ctx is
// done; it closes its connection before it returns.
func (w *partitionWatcher) run(ctx context.Context) {
	defer w.close()
	for {
		w.checkLogged(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.st.o.PartitionCheckInterval):
		}
	}
}

// once checks once (a catch-up run) and closes the connection.
func (w *partitionWatcher) once(ctx context.Context) {
	defer w.close()
	w.checkLogged(ctx)
}

func (w *partitionWatcher) close() {
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
}

// checkLogged checks, and logs a failure to read the source: the next
// check tries again. A failed reload fails the stream.
func (w *partitionWatcher) checkLogged(ctx context.Context) {
	err := w.check(ctx)
	if err == nil || ctx.Err() != nil {
		return
	}
	var re reloadError
	if errors.As(err, &re) {
		w.st.fail(err)
		return
	}
	w.st.log.Warn("partition check failed; trying again", "err", err)
	if w.conn != nil && w.conn.IsClosed() {
		w.conn = nil
	}
}

// reloadError is a reload that failed, as opposed to a failed check.
type reloadError struct{ err error }

func (e reloadError) Error() string { return e.err.Error() }
func (e reloadError) Unwrap() error { return e.err }

// publishedRoot is a partitioned table published through its root.
type publishedRoot struct {
	OID          uint32
	Schema, Name string
}

func (w *partitionWatcher) check(ctx context.Context) error {
	if w.conn == nil {
		cctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
		conn, err := pgx.ConnectConfig(cctx, w.cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		w.conn = conn
	}
	if err := w.copyNewTables(ctx); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
	defer cancel()
	rows, err := w.conn.Query(qctx, `SELECT DISTINCT c.oid, n.nspname, c.relname
		FROM pg_publication p, pg_publication_tables pt
		JOIN pg_class l ON l.oid = format('%I.%I', pt.schemaname, pt.tablename)::regclass
		JOIN pg_class c ON c.oid = CASE WHEN l.relispartition THEN pg_partition_root(l.oid) ELSE l.oid END
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1 AND pt.pubname = $1 AND p.pubviaroot AND c.relkind = 'p'
		ORDER BY 2, 3`, w.st.o.Publication)
	if err != nil {
		return fmt.Errorf("list published partitioned tables: %w", err)
	}
	roots, err := pgx.CollectRows(rows, pgx.RowToStructByPos[publishedRoot])
	if err != nil || len(roots) == 0 {
		return err
	}
	oids := make([]uint32, len(roots))
	for i, r := range roots {
		oids[i] = r.OID
	}
	sets, err := partitionSets(qctx, w.conn, oids)
	if err != nil {
		return err
	}
	for _, r := range roots {
		cur, ok := sets[r.OID]
		if !ok { // dropped since it was listed
			continue
		}
		key := cur.encode()
		if w.seen[r.OID] == key {
			continue
		}
		was, recorded, exists, err := w.recorded(ctx, r)
		if err != nil {
			return err
		}
		if !exists {
			continue // nothing in the lake yet, or its first copy runs: the copy records the set
		}
		why := "no partition set recorded in the lake (a table copied by an older cdclake, or never copied)"
		if recorded {
			why = cur.changes(was)
		}
		if why == "" {
			w.seen[r.OID] = key
			continue
		}
		if recorded {
			fctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
			fresh, err := onlyFreshPartitions(fctx, w.conn, was, cur)
			cancel()
			if err != nil {
				return err
			}
			if fresh {
				// their rows, if any come, are streamed: nothing to copy
				if err := w.record(ctx, r, cur); err != nil {
					return err
				}
				w.st.log.Info("empty partitions created or attached: recorded without a reload", "table", r.Schema+"."+r.Name, "why", why)
				w.seen[r.OID] = key
				continue
			}
		}
		table := r.Schema + "." + r.Name
		if !w.reload {
			w.st.log.Warn("partitions changed in the source: rows in the lake may differ until the table is reloaded (--snapshot never: run cdclake snapshot --table)",
				"table", table, "why", why)
			w.seen[r.OID] = key
			continue
		}
		w.st.log.Warn("partitions changed in the source: reloading the table", "table", table, "why", why)
		w.st.reloadMu.Lock()
		err = Reload(ctx, w.st.sink.cat, w.st.o, []string{pgx.Identifier{r.Schema, r.Name}.Sanitize()})
		w.st.reloadMu.Unlock()
		if err != nil {
			return reloadError{fmt.Errorf("reload of %s after its partitions changed: %w", table, err)}
		}
		// not marked seen: the next check compares with the set the reload recorded
	}
	return nil
}

// copyNewTables copies the existing rows of published tables that have no
// copy recorded in the catalog. A table added to the publication while
// streaming is copied when its first change arrives (stream.reloadNew);
// one that does not change is copied here, within a check interval.
func (w *partitionWatcher) copyNewTables(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
	defer cancel()
	if err := w.addNewTables(qctx); err != nil {
		return err
	}
	rows, err := w.conn.Query(qctx, "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2", w.st.o.Publication)
	if err != nil {
		return fmt.Errorf("list published tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Schema, Name string }])
	if err != nil {
		return fmt.Errorf("list published tables: %w", err)
	}
	copied := func() (map[string]bool, error) {
		lctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
		defer cancel()
		snaps, err := w.st.sink.cat.Snapshots(lctx, w.st.o.Name)
		out := map[string]bool{}
		for _, sn := range snaps {
			out[sn.Schema+"."+sn.Table] = true
		}
		return out, err
	}
	have, err := copied()
	if err != nil {
		return err
	}
	for _, t := range tables {
		table := t.Schema + "." + t.Name
		if have[table] {
			continue
		}
		if !w.reload {
			if w.seen[0] == "" { // warn once
				w.st.log.Warn("published tables without a copy of their rows (--snapshot never: run cdclake snapshot --table)", "table", table)
				w.seen[0] = table
			}
			continue
		}
		w.st.reloadMu.Lock()
		have, err = copied() // a reload of its first change may have run meanwhile
		if err == nil && !have[table] {
			w.st.log.Info("published table without a copy of its rows: copying it", "table", table)
			err = Reload(ctx, w.st.sink.cat, w.st.o, []string{pgx.Identifier{t.Schema, t.Name}.Sanitize()})
			if err != nil {
				err = reloadError{fmt.Errorf("copy of new table %s: %w", table, err)}
			}
		}
		w.st.reloadMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// addNewTables adds to a publication cdclake created without a table list
// (marked with managedComment) the tables created since that have a
// primary key or a replica identity; tables without one stay out (so the
// services' own UPDATE and DELETE on them keep working), with a warning
// once. Adding a table needs ownership of it (or a superuser): without
// it a warning says so, once per table.
func (w *partitionWatcher) addNewTables(ctx context.Context) error {
	var managed bool
	err := w.conn.QueryRow(ctx, `SELECT coalesce(obj_description(oid, 'pg_publication') = $2, false) FROM pg_publication WHERE pubname = $1`,
		w.st.o.Publication, managedComment).Scan(&managed)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !managed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up publication: %w", err)
	}
	rows, err := w.conn.Query(ctx, `SELECT t.name, c.relreplident = 'f' OR (c.relreplident = 'i')
		OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
		FROM (`+candidateTables+`) t(name) JOIN pg_class c ON c.oid = t.name::regclass
		WHERE NOT EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
			WHERE p.pubname = $1 AND r.prrelid = c.oid)`, w.st.o.Publication)
	if err != nil {
		return fmt.Errorf("list new tables: %w", err)
	}
	type candidate struct {
		Name     string
		Identity bool
	}
	news, err := pgx.CollectRows(rows, pgx.RowToStructByPos[candidate])
	if err != nil {
		return fmt.Errorf("list new tables: %w", err)
	}
	for _, t := range news {
		if w.warned[t.Name] {
			continue
		}
		if !t.Identity {
			w.warned[t.Name] = true
			w.st.log.Warn("new table without a primary key or replica identity: not captured (add a primary key or REPLICA IDENTITY FULL and cdclake adds it)", "table", t.Name)
			continue
		}
		_, err := w.conn.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", pgx.Identifier{w.st.o.Publication}.Sanitize(), t.Name))
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			w.warned[t.Name] = true
			w.st.log.Warn("new table not added to the publication: cdclake's user does not own it (add it as its owner: ALTER PUBLICATION ... ADD TABLE)", "table", t.Name, "publication", w.st.o.Publication)
			continue
		}
		if err != nil {
			return fmt.Errorf("add %s to the publication: %w", t.Name, err)
		}
		w.st.log.Info("new table added to the publication", "table", t.Name, "publication", w.st.o.Publication)
	}
	return nil
}

// recorded returns the partition set recorded on a table's changelog and
// whether one is; exists is false when there is no changelog to compare
// (or while the first copy of the table runs, which records the set).
func (w *partitionWatcher) recorded(ctx context.Context, r publishedRoot) (was partitionSet, recorded, exists bool, err error) {
	lctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
	defer cancel()
	tbl, err := w.st.sink.cat.Iceberg().LoadTable(lctx, lakeformat.ChangelogIdent(w.st.o.Name, r.Schema, r.Name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("load %s.%s: %w", r.Schema, r.Name, err)
	}
	v, ok := tbl.Properties()[lakeformat.PropPartitions]
	if ok {
		was, err := decodePartitionSet(v)
		return was, true, true, err
	}
	snaps, err := w.st.sink.cat.Snapshots(lctx, w.st.o.Name)
	if err != nil {
		return nil, false, false, err
	}
	for _, sn := range snaps {
		if sn.Schema == r.Schema && sn.Table == r.Name && sn.State == catalog.SnapshotRunning {
			return nil, false, false, nil
		}
	}
	return nil, false, true, nil
}

// onlyFreshPartitions reports whether cur only adds partitions to was
// that are empty and were never truncated or rewritten (relfilenode still
// the oid PostgreSQL gave the new table): a partition created for future
// rows (CREATE TABLE ... PARTITION OF, pg_partman's premade partitions),
// or an empty table attached. Such a partition held no rows when it
// joined (rows it had and lost since were deleted, which is streamed), so
// the lake lacks nothing and needs no reload.
func onlyFreshPartitions(ctx context.Context, conn *pgx.Conn, was, cur partitionSet) (bool, error) {
	now := map[uint32]partitionLeaf{}
	for _, l := range cur {
		now[l.OID] = l
	}
	for _, l := range was {
		if n, ok := now[l.OID]; !ok || n.Filenode != l.Filenode {
			return false, nil
		}
		delete(now, l.OID)
	}
	for _, l := range now {
		if l.Filenode != l.OID {
			return false, nil
		}
		var empty bool
		if err := conn.QueryRow(ctx, "SELECT NOT EXISTS (SELECT FROM ONLY "+l.Name+")").Scan(&empty); err != nil {
			return false, fmt.Errorf("read partition %s: %w", l.Name, err)
		}
		if !empty {
			return false, nil
		}
	}
	return true, nil
}

// record commits set as a table's recorded partition set, beside the
// stream's commits (a commit of one property, made again on the table's
// new state when another writer committed first).
func (w *partitionWatcher) record(ctx context.Context, r publishedRoot, set partitionSet) error {
	w.st.reloadMu.Lock() // not beside a reload, which records its own set
	defer w.st.reloadMu.Unlock()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt*attempt) * 50 * time.Millisecond)
		}
		lctx, cancel := context.WithTimeout(ctx, partitionQueryTimeout)
		err := func() error {
			tbl, err := w.st.sink.cat.Iceberg().LoadTable(lctx, lakeformat.ChangelogIdent(w.st.o.Name, r.Schema, r.Name))
			if err != nil {
				return err
			}
			tx := tbl.NewTransaction()
			if err := tx.SetProperties(iceberg.Properties{lakeformat.PropPartitions: set.encode()}); err != nil {
				return err
			}
			_, err = tx.Commit(lctx)
			return err
		}()
		cancel()
		if err == nil {
			return nil
		}
		if attempt >= 4 || !Conflict(err) {
			return fmt.Errorf("record the partitions of %s.%s: %w", r.Schema, r.Name, err)
		}
	}
}
