package catalog

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"
)

// TestCaughtUp records catch-up times: they only move forward, survive a
// PutSource, and a catalog made before the column gets it.
func TestCaughtUp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	// a catalog from before lsn_base and caught_up_at
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE cdclake_sources (name TEXT PRIMARY KEY, slot TEXT NOT NULL, publication TEXT NOT NULL,
		lsn BIGINT NOT NULL, commit_time BIGINT NOT NULL, updated_at BIGINT NOT NULL)`)
	if err == nil {
		_, err = db.Exec(`INSERT INTO cdclake_sources VALUES ('old', 's', 'p', 7, 0, 0)`)
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, Options{URL: path, Warehouse: "file://" + filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s, err := c.Source(ctx, "old"); err != nil || s.LSN != 7 || !s.CaughtUpAt.IsZero() {
		t.Fatalf("old source = %+v, %v", s, err)
	}
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	if err := c.SetCaughtUp(ctx, "old", t0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCaughtUp(ctx, "old", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Source(ctx, "old")
	if err != nil || !s.CaughtUpAt.Equal(t0) {
		t.Fatalf("caught up at %v, %v; want %v (never backwards)", s.CaughtUpAt, err, t0)
	}
	s.LSN = 9
	if err := c.PutSource(ctx, s); err != nil {
		t.Fatal(err)
	}
	srcs, err := c.Sources(ctx)
	if err != nil || len(srcs) != 1 || srcs[0].LSN != 9 || !srcs[0].CaughtUpAt.Equal(t0) {
		t.Fatalf("sources after PutSource = %+v, %v", srcs, err)
	}
	if err := c.SetCaughtUp(ctx, "nosuch", t0); !errors.Is(err, ErrNoSuchSource) {
		t.Errorf("SetCaughtUp of an unknown source: %v", err)
	}
}
