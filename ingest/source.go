package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdclake/cdclake/ingest/pgarrow"
)

// source is a checked PostgreSQL database: a regular connection for
// queries and the settings of its replication.
type source struct {
	cfg    *pgconn.Config
	pgxCfg *pgx.ConnConfig
	conn   *pgx.Conn
	// base is the source's catalog.Source.LSNBase: a WAL position x of
	// the server is lake position x + base
	base uint64
}

// lake returns the lake position of the server's WAL position lsn.
func (s *source) lake(lsn uint64) uint64 { return lsn + s.base }

// insertLSN returns the server's WAL insert position, which lies past the
// commit record of every transaction committed before now (on a standby,
// where logical decoding works from PostgreSQL 16, the replay position,
// past everything it can send).
func (s *source) insertLSN(ctx context.Context) (uint64, error) {
	var lsn pglogrepl.LSN
	err := s.conn.QueryRow(ctx, `SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
		ELSE pg_current_wal_insert_lsn() END`).Scan(&lsn)
	if err != nil {
		return 0, fmt.Errorf("read the WAL insert position: %w", err)
	}
	return uint64(lsn), nil
}

// pgxConfig returns a copy of the connection settings for another connection.
func (s *source) pgxConfig() *pgx.ConnConfig { return s.pgxCfg.Copy() }

// connect opens a regular connection and turns the usual failures into
// one-line errors that say what to fix. The password never appears.
func connect(ctx context.Context, url string) (*source, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("--source is not a valid PostgreSQL URL (want postgres://user@host:port/db): %s", redactErr(err, url))
	}
	// the same output formats on every connection, so a value reads the
	// same from the stream and from a snapshot
	for k, v := range pgarrow.SessionSettings() {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(&cfg.Config, err)
	}
	return &source{cfg: &cfg.Config, pgxCfg: cfg.Copy(), conn: conn}, nil
}

func connectError(cfg *pgconn.Config, err error) error {
	where := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("PostgreSQL at %s rejected user %q: %s (check the user and password in --source or PGPASSWORD, and pg_hba.conf)", where, cfg.User, pgErr.Message)
		case "3D000":
			return fmt.Errorf("database %q does not exist on %s (create it or fix the database name in --source)", cfg.Database, where)
		case "53300":
			return fmt.Errorf("PostgreSQL at %s has no free connection slots (raise max_connections or max_wal_senders)", where)
		}
		return fmt.Errorf("connect to PostgreSQL at %s: %s (SQLSTATE %s)", where, pgErr.Message, pgErr.Code)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("cannot reach PostgreSQL at %s: %v (check host and port in --source and that the server is running)", where, opErr.Err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("cannot reach PostgreSQL at %s: %v (check host and port in --source and that the server is running)", where, netErr)
	}
	return fmt.Errorf("connect to PostgreSQL at %s: %s", where, firstLine(err.Error()))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func redactErr(err error, url string) string {
	msg := err.Error()
	if i := strings.LastIndex(url, "@"); i > 0 { // a password may hold an unencoded @
		msg = strings.ReplaceAll(msg, url[:i], "postgres://…")
	}
	return msg
}

// check verifies that the server can feed logical replication to this user.
func (s *source) check(ctx context.Context, tables []string) error {
	var level string
	if err := s.conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("wal_level is %q on the source, logical replication needs \"logical\" (run ALTER SYSTEM SET wal_level = logical and restart PostgreSQL)", level)
	}
	var repl, super bool
	if err := s.conn.QueryRow(ctx, "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&repl, &super); err != nil {
		return fmt.Errorf("read role attributes: %w", err)
	}
	if !repl && !super {
		return fmt.Errorf("user %q lacks the REPLICATION attribute (run ALTER ROLE %s REPLICATION as a superuser)", s.cfg.User, pgx.Identifier{s.cfg.User}.Sanitize())
	}
	for _, t := range tables {
		var ok bool
		if err := s.conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", t).Scan(&ok); err != nil {
			return fmt.Errorf("look up table %s: %w", t, err)
		}
		if !ok {
			return fmt.Errorf("table %s named in --tables does not exist in database %q (fix --tables)", t, s.cfg.Database)
		}
	}
	return nil
}

// primaryKey returns the key columns of a table, in key order: its
// primary key, else the index of REPLICA IDENTITY USING INDEX (unique, not
// null); none for a table without either (REPLICA IDENTITY FULL), whose
// rows are a multiset. Ingest's streaming and snapshot paths both key
// tables by it.
func (s *source) primaryKey(ctx context.Context, relid uint32) ([]string, error) {
	rows, err := s.conn.Query(ctx, `WITH ix AS (
			SELECT indkey FROM pg_index WHERE indrelid = $1 AND (indisprimary OR indisreplident)
			ORDER BY indisprimary DESC LIMIT 1)
		SELECT a.attname FROM ix
		JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY k(attnum, n) ON true
		JOIN pg_attribute a ON a.attrelid = $1 AND a.attnum = k.attnum
		ORDER BY k.n`, relid)
	if err != nil {
		return nil, fmt.Errorf("look up primary key of relation %d: %w", relid, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up primary key of relation %d: %w", relid, err)
	}
	return keys, nil
}

// attribute is what the catalog says about a column's existing rows.
type attribute struct {
	// missing: the column was added with a constant default that
	// PostgreSQL gave every existing row without writing it
	// (atthasmissing); value is that default as text (nil: NULL).
	missing bool
	value   *string
	// filled: existing rows may hold values no change carries other than
	// value: the column has a default (volatile, or set after it was
	// added) or is an identity column, but no missing value.
	filled bool
}

// attributes returns the catalog's attributes of a table's columns.
func (s *source) attributes(ctx context.Context, relid uint32) (map[string]attribute, error) {
	rows, err := s.conn.Query(ctx, `SELECT a.attname, a.atthasmissing,
			CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END,
			d.adbin IS NOT NULL OR a.attidentity <> '' OR (t.typtype = 'd' AND t.typdefault IS NOT NULL)
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, relid)
	if err != nil {
		return nil, fmt.Errorf("look up columns of relation %d: %w", relid, err)
	}
	defer rows.Close()
	out := map[string]attribute{}
	for rows.Next() {
		var name string
		var a attribute
		var hasDefault bool
		if err := rows.Scan(&name, &a.missing, &a.value, &hasDefault); err != nil {
			return nil, fmt.Errorf("look up columns of relation %d: %w", relid, err)
		}
		a.filled = hasDefault && !a.missing
		out[name] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up columns of relation %d: %w", relid, err)
	}
	return out, nil
}

// checkIdentity refuses tables whose updates and deletes PostgreSQL could
// not publish: no primary key and REPLICA IDENTITY DEFAULT, or NOTHING.
// It checks the tables of the publication, or those it would have.
func (s *source) checkIdentity(ctx context.Context, publication string, tables []string) error {
	var qualified []string
	for _, t := range tables {
		qualified = append(qualified, strings.Trim(quoteQualified(t), `"`))
	}
	var bad string
	err := s.conn.QueryRow(ctx, `
		WITH published AS (
			SELECT c.oid FROM pg_publication_tables pt
			JOIN pg_namespace n ON n.nspname = pt.schemaname
			JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
			WHERE pt.pubname = $1
		), candidates AS (
			SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
			AND (coalesce(cardinality($2::text[]), 0) = 0 OR n.nspname || '"."' || c.relname = ANY($2))
			AND NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)
		)
		SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid IN (SELECT oid FROM published UNION SELECT oid FROM candidates)
		AND (c.relreplident = 'n' OR (c.relreplident = 'd'
			AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
		ORDER BY 1 LIMIT 1`, publication, qualified).Scan(&bad)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check replica identities: %w", err)
	}
	return fmt.Errorf("table %s has no primary key and no usable REPLICA IDENTITY, so its updates and deletes cannot be captured (run ALTER TABLE %s REPLICA IDENTITY FULL, or add a primary key, or leave it out with --tables)", bad, bad)
}

// ensurePublication creates the publication when missing and reports
// whether it did.
//
// Without a table list it publishes the tables there are now, not FOR ALL
// TABLES: PostgreSQL refuses UPDATE and DELETE on a table without a
// replica identity in a FOR ALL TABLES publication, so a keyless table a
// service creates later would break the service. The publication is
// marked as cdclake's (managedComment), and the partition watcher adds
// tables created later that have a primary key or replica identity.
func (s *source) ensurePublication(ctx context.Context, name string, tables []string) (bool, error) {
	tablesFlag := tables
	var exists bool
	if err := s.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up publication: %w", err)
	}
	if exists {
		return false, nil
	}
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = quoteQualified(t)
	}
	if len(tables) == 0 { // the tables there are now; the watcher adds new ones (managedComment)
		rows, err := s.conn.Query(ctx, candidateTables)
		if err != nil {
			return false, fmt.Errorf("list tables: %w", err)
		}
		if quoted, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return false, fmt.Errorf("list tables: %w", err)
		}
	}
	target := ""
	if len(quoted) > 0 {
		target = " FOR TABLE " + strings.Join(quoted, ", ")
	}
	sql := fmt.Sprintf("CREATE PUBLICATION %s%s WITH (publish_via_partition_root = true)", pgx.Identifier{name}.Sanitize(), target)
	if len(tablesFlag) == 0 {
		sql += fmt.Sprintf("; COMMENT ON PUBLICATION %s IS '%s'", pgx.Identifier{name}.Sanitize(), managedComment)
	}
	if _, err := s.conn.Exec(ctx, sql); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return false, fmt.Errorf("user %q may not create publication %q: %s (create it as a superuser, or pass an existing one with --publication)", s.cfg.User, name, pgErr.Message)
		}
		return false, fmt.Errorf("create publication %q: %w", name, err)
	}
	return true, nil
}

// managedComment marks a publication cdclake created without a table
// list: cdclake adds the tables created later that have a primary key or
// a replica identity (partitionWatcher.addNewTables).
const managedComment = "cdclake: new tables with a primary key or replica identity are added by cdclake"

// candidateTables lists the tables a publication without a table list
// takes: ordinary and partitioned tables (partitions by their root)
// outside the system schemas, as quoted schema.table names.
const candidateTables = `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT c.relpersistence = 't'
	AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`

func (s *source) dropPublication(ctx context.Context, name string) {
	_, _ = s.conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize())
}

// quoteQualified quotes schema.table (a bare name means public).
func quoteQualified(t string) string {
	parts := strings.SplitN(t, ".", 2)
	if len(parts) == 1 {
		parts = []string{"public", parts[0]}
	}
	return pgx.Identifier(parts).Sanitize()
}

// slotInfo is a replication slot as pg_replication_slots shows it.
type slotInfo struct {
	exists    bool
	plugin    string
	confirmed uint64
	active    bool
	pid       int32
	walStatus string
}

func (s *source) slot(ctx context.Context, name string) (slotInfo, error) {
	var si slotInfo
	var confirmed *string
	var plugin, walStatus *string
	var pid *int32
	err := s.conn.QueryRow(ctx, `SELECT plugin, confirmed_flush_lsn::text, active, active_pid, wal_status
		FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&plugin, &confirmed, &si.active, &pid, &walStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return si, nil
	}
	if err != nil {
		return si, fmt.Errorf("look up slot %q: %w", name, err)
	}
	si.exists = true
	if plugin != nil {
		si.plugin = *plugin
	}
	if walStatus != nil {
		si.walStatus = *walStatus
	}
	if pid != nil {
		si.pid = *pid
	}
	if confirmed != nil {
		lsn, err := pglogrepl.ParseLSN(*confirmed)
		if err != nil {
			return si, fmt.Errorf("parse confirmed_flush_lsn of slot %q: %w", name, err)
		}
		si.confirmed = uint64(lsn)
	}
	return si, nil
}

// slotFree looks the slot up, giving a slot still held by a connection
// that is going away (a cdclake that just stopped) a few seconds to be
// released.
func (s *source) slotFree(ctx context.Context, name string) (slotInfo, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		si, err := s.slot(ctx, name)
		if err != nil || !si.active || time.Now().After(deadline) {
			return si, err
		}
		select {
		case <-ctx.Done():
			return si, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// replication opens a replication connection to the same database.
func (s *source) replication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := s.cfg.Copy()
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(cfg, err)
	}
	return conn, nil
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// slotName turns a source name into a valid slot or publication name.
func slotName(source string) string {
	n := "cdclake_" + unsafeName.ReplaceAllString(strings.ToLower(source), "_")
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// activeSlotError explains a slot held by another process.
// ErrSlotInUse is wrapped by the error of a start that finds the slot in
// use by another process.
var ErrSlotInUse = errors.New("is in use by another process")

func activeSlotError(slot string, pid int32) error {
	return fmt.Errorf("replication slot %q %w (pid %d): another cdclake or consumer is reading this source (stop it, or use another --slot)", slot, ErrSlotInUse, pid)
}

// lock takes a session advisory lock named after the slot, held on the
// source connection until Run returns (unlock): a second cdclake for the
// same slot stops here, before it touches the slot or the lake (the slot
// alone excludes it only once streaming starts). Like slotFree it waits a
// few seconds for a holder that is going away.
func (s *source) lock(ctx context.Context, slot string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ok bool
		if err := s.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext('cdclake/' || $1))", slot).Scan(&ok); err != nil {
			return fmt.Errorf("lock the source: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another cdclake is running for replication slot %q on this source (stop it, or use another --slot)", slot)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unlock releases the lock before the connection closes, so that a start
// right after this run ends finds it free.
func (s *source) unlock(slot string) {
	// bounded: a source that does not answer drops the lock with the connection
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = s.conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtext('cdclake/' || $1))", slot)
}
