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
}

const sourcesDDL = `CREATE TABLE IF NOT EXISTS cdclake_sources (
	name TEXT PRIMARY KEY,
	slot TEXT NOT NULL,
	publication TEXT NOT NULL,
	lsn BIGINT NOT NULL,
	commit_time BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
)`

func (c *Catalog) migrate(ctx context.Context) error {
	for _, ddl := range []string{sourcesDDL, snapshotsDDL} {
		if _, err := c.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create catalog tables: %w", err)
		}
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
	var commit, updated int64
	err := c.db.QueryRowContext(ctx, c.rebind(
		`SELECT name, slot, publication, lsn, commit_time, updated_at FROM cdclake_sources WHERE name = ?`), name).
		Scan(&s.Name, &s.Slot, &s.Publication, &s.LSN, &commit, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("%w: %s", ErrNoSuchSource, name)
	}
	if err != nil {
		return s, fmt.Errorf("read source %s: %w", name, err)
	}
	s.CommitTime, s.UpdatedAt = fromMicros(commit), fromMicros(updated)
	return s, nil
}

// Sources lists every source, ordered by name.
func (c *Catalog) Sources(ctx context.Context) ([]Source, error) {
	rows, err := c.db.QueryContext(ctx,
		`SELECT name, slot, publication, lsn, commit_time, updated_at FROM cdclake_sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	var out []Source
	for rows.Next() {
		var s Source
		var commit, updated int64
		if err := rows.Scan(&s.Name, &s.Slot, &s.Publication, &s.LSN, &commit, &updated); err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		s.CommitTime, s.UpdatedAt = fromMicros(commit), fromMicros(updated)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PutSource creates or replaces the record of a source, watermark included.
func (c *Catalog) PutSource(ctx context.Context, s Source) error {
	_, err := c.db.ExecContext(ctx, c.rebind(`INSERT INTO cdclake_sources
		(name, slot, publication, lsn, commit_time, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET slot = excluded.slot, publication = excluded.publication,
		lsn = excluded.lsn, commit_time = excluded.commit_time, updated_at = excluded.updated_at`),
		s.Name, s.Slot, s.Publication, int64(s.LSN), toMicros(s.CommitTime), toMicros(time.Now()))
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
