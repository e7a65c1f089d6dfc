package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sqlcat "github.com/apache/iceberg-go/catalog/sql"
)

// ErrNoSuchSource is returned for a source the catalog has no record of.
var ErrNoSuchSource = errors.New("source does not exist")

// Source is the catalog's record of one PostgreSQL source.
type Source struct {
	Name        string
	Slot        string
	Publication string
	// LSN is the watermark: every change committed at or before it is in
	// the lake (as an end-of-transaction LSN, the position acked to the slot).
	LSN uint64
	// CommitTime is the commit time of the last transaction below LSN.
	CommitTime time.Time
	// UpdatedAt is when the watermark was last written.
	UpdatedAt time.Time
	// LSNBase maps the source server's WAL positions to the lake's: a
	// change at server LSN x is at lake position x + LSNBase (its
	// _cdc_lsn, the watermark, each table's cdclake.source-lsn and
	// snapshot record are lake positions). It is 0 until the source moves
	// to a server whose positions lie below what the lake holds (a new
	// server, a dump and restore, a point-in-time restore): the resnapshot
	// then starts a new epoch whose positions continue above the lake's,
	// so that they keep rising for compaction and readers.
	LSNBase uint64
	// CaughtUpAt is a time before which every transaction the source
	// committed is known to be in the lake: the start of the latest
	// catch-up run that reached the server's WAL end (ingest --catch-up).
	// It lets the hours of a source that has been quiet since close
	// without a process watching the source. Zero when unknown.
	CaughtUpAt time.Time
}

const sourcesDDL = `CREATE TABLE IF NOT EXISTS cdclake_sources (
	name TEXT PRIMARY KEY,
	slot TEXT NOT NULL,
	publication TEXT NOT NULL,
	lsn BIGINT NOT NULL,
	commit_time BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	lsn_base BIGINT NOT NULL DEFAULT 0,
	caught_up_at BIGINT NOT NULL DEFAULT 0
)`

func (c *Catalog) migrate(ctx context.Context) error {
	for _, ddl := range []string{sourcesDDL, snapshotsDDL} {
		if _, err := c.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create catalog tables: %w", err)
		}
	}
	for _, col := range []string{"lsn_base", "caught_up_at"} {
		if err := c.addSourcesColumn(ctx, col); err != nil {
			return err
		}
	}
	return nil
}

// addSourcesColumn adds a BIGINT column (default 0) to a cdclake_sources
// table created before it.
func (c *Catalog) addSourcesColumn(ctx context.Context, col string) error {
	if c.dialect == sqlcat.Postgres {
		if _, err := c.db.ExecContext(ctx, `ALTER TABLE cdclake_sources ADD COLUMN IF NOT EXISTS `+col+` BIGINT NOT NULL DEFAULT 0`); err != nil {
			return fmt.Errorf("add %s to cdclake_sources: %w", col, err)
		}
		return nil
	}
	has := func() (bool, error) {
		var n int
		err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('cdclake_sources') WHERE name = ?`, col).Scan(&n)
		return n > 0, err
	}
	ok, err := has()
	if err != nil {
		return fmt.Errorf("read the columns of cdclake_sources: %w", err)
	}
	if ok {
		return nil
	}
	if _, err := c.db.ExecContext(ctx, `ALTER TABLE cdclake_sources ADD COLUMN `+col+` BIGINT NOT NULL DEFAULT 0`); err != nil {
		// another process may have added it meanwhile
		if ok, _ := has(); ok {
			return nil
		}
		return fmt.Errorf("add %s to cdclake_sources: %w", col, err)
	}
	return nil
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (c *Catalog) rebind(q string) string {
	if c.dialect != sqlcat.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Source returns the record of the named source.
func (c *Catalog) Source(ctx context.Context, name string) (Source, error) {
	var s Source
	var commit, updated, caughtUp int64
	err := c.db.QueryRowContext(ctx, c.rebind(
		`SELECT name, slot, publication, lsn, commit_time, updated_at, lsn_base, caught_up_at FROM cdclake_sources WHERE name = ?`), name).
		Scan(&s.Name, &s.Slot, &s.Publication, &s.LSN, &commit, &updated, &s.LSNBase, &caughtUp)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("%w: %s", ErrNoSuchSource, name)
	}
	if err != nil {
		return s, fmt.Errorf("read source %s: %w", name, err)
	}
	s.CommitTime, s.UpdatedAt, s.CaughtUpAt = fromMicros(commit), fromMicros(updated), fromMicros(caughtUp)
	return s, nil
}

// Sources lists every source, ordered by name.
func (c *Catalog) Sources(ctx context.Context) ([]Source, error) {
	rows, err := c.db.QueryContext(ctx,
		`SELECT name, slot, publication, lsn, commit_time, updated_at, lsn_base, caught_up_at FROM cdclake_sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	var out []Source
	for rows.Next() {
		var s Source
		var commit, updated, caughtUp int64
		if err := rows.Scan(&s.Name, &s.Slot, &s.Publication, &s.LSN, &commit, &updated, &s.LSNBase, &caughtUp); err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		s.CommitTime, s.UpdatedAt, s.CaughtUpAt = fromMicros(commit), fromMicros(updated), fromMicros(caughtUp)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PutSource creates or replaces the record of a source, watermark and
// LSN base included (CaughtUpAt is kept: see SetCaughtUp).
func (c *Catalog) PutSource(ctx context.Context, s Source) error {
	_, err := c.db.ExecContext(ctx, c.rebind(`INSERT INTO cdclake_sources
		(name, slot, publication, lsn, commit_time, updated_at, lsn_base) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET slot = excluded.slot, publication = excluded.publication,
		lsn = excluded.lsn, commit_time = excluded.commit_time, updated_at = excluded.updated_at,
		lsn_base = excluded.lsn_base`),
		s.Name, s.Slot, s.Publication, int64(s.LSN), toMicros(s.CommitTime), toMicros(time.Now()), int64(s.LSNBase))
	if err != nil {
		return fmt.Errorf("write source %s: %w", s.Name, err)
	}
	return nil
}

// SetWatermark advances a source's watermark. It never moves it backwards.
func (c *Catalog) SetWatermark(ctx context.Context, name string, lsn uint64, commitTime time.Time) error {
	res, err := c.db.ExecContext(ctx, c.rebind(`UPDATE cdclake_sources
		SET lsn = ?, commit_time = CASE WHEN ? > commit_time THEN ? ELSE commit_time END, updated_at = ?
		WHERE name = ? AND lsn <= ?`),
		int64(lsn), toMicros(commitTime), toMicros(commitTime), toMicros(time.Now()), name, int64(lsn))
	if err != nil {
		return fmt.Errorf("write watermark of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := c.Source(ctx, name); err != nil {
			return err
		}
		return fmt.Errorf("write watermark of %s: would move backwards to %d", name, lsn)
	}
	return nil
}

// SetCaughtUp records that every transaction the source committed before
// at is in the lake (Source.CaughtUpAt). It never moves the time
// backwards.
func (c *Catalog) SetCaughtUp(ctx context.Context, name string, at time.Time) error {
	res, err := c.db.ExecContext(ctx, c.rebind(`UPDATE cdclake_sources SET caught_up_at = ? WHERE name = ? AND caught_up_at < ?`),
		toMicros(at), name, toMicros(at))
	if err != nil {
		return fmt.Errorf("write caught-up time of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := c.Source(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
