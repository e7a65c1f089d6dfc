package catalog

import (
	"context"
	"fmt"
	"time"
)

// Snapshot states. A running snapshot is under way, pending or was
// interrupted (the next ingest start copies the table again); a dropped
// one's table no longer exists on the source, so it is never resumed.
const (
	SnapshotRunning = "running"
	SnapshotDone    = "done"
	SnapshotDropped = "dropped"
)

// TableSnapshot is the progress of one table's snapshot (the copy of its
// existing rows into the changelog).
type TableSnapshot struct {
	Source, Schema, Table string
	State                 string
	// LSN is the position the snapshot is consistent with: its rows are
	// written just below it, and every change at or after it is streamed.
	LSN        uint64
	Rows       int64
	Bytes      int64
	TotalBytes int64 // estimate, from the table's size on disk
	StartedAt  time.Time
	UpdatedAt  time.Time
}

const snapshotsDDL = `CREATE TABLE IF NOT EXISTS cdclake_snapshots (
	source TEXT NOT NULL,
	schema_name TEXT NOT NULL,
	table_name TEXT NOT NULL,
	state TEXT NOT NULL,
	lsn BIGINT NOT NULL,
	rows_copied BIGINT NOT NULL,
	bytes_copied BIGINT NOT NULL,
	total_bytes BIGINT NOT NULL,
	started_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (source, schema_name, table_name)
)`

// PutSnapshot records a table snapshot's state and progress.
func (c *Catalog) PutSnapshot(ctx context.Context, s TableSnapshot) error {
	_, err := c.db.ExecContext(ctx, c.rebind(`INSERT INTO cdclake_snapshots
		(source, schema_name, table_name, state, lsn, rows_copied, bytes_copied, total_bytes, started_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, schema_name, table_name) DO UPDATE SET state = excluded.state, lsn = excluded.lsn,
		rows_copied = excluded.rows_copied, bytes_copied = excluded.bytes_copied, total_bytes = excluded.total_bytes,
		started_at = excluded.started_at, updated_at = excluded.updated_at`),
		s.Source, s.Schema, s.Table, s.State, int64(s.LSN), s.Rows, s.Bytes, s.TotalBytes, toMicros(s.StartedAt), toMicros(time.Now()))
	if err != nil {
		return fmt.Errorf("record snapshot of %s.%s.%s: %w", s.Source, s.Schema, s.Table, err)
	}
	return nil
}

// Snapshots lists the table snapshots of a source ("" for all sources).
func (c *Catalog) Snapshots(ctx context.Context, source string) ([]TableSnapshot, error) {
	rows, err := c.db.QueryContext(ctx, c.rebind(`SELECT source, schema_name, table_name, state, lsn, rows_copied,
		bytes_copied, total_bytes, started_at, updated_at FROM cdclake_snapshots
		WHERE ? = '' OR source = ? ORDER BY source, schema_name, table_name`), source, source)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer rows.Close()
	var out []TableSnapshot
	for rows.Next() {
		var s TableSnapshot
		var started, updated int64
		if err := rows.Scan(&s.Source, &s.Schema, &s.Table, &s.State, &s.LSN, &s.Rows, &s.Bytes, &s.TotalBytes, &started, &updated); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		s.StartedAt, s.UpdatedAt = fromMicros(started), fromMicros(updated)
		out = append(out, s)
	}
	return out, rows.Err()
}
