package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// snapshotState returns the state of a table's snapshot record ("" when
// there is none).
func snapshotState(t *testing.T, cat *catalog.Catalog, source, table string) string {
	t.Helper()
	snaps, err := cat.Snapshots(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.Schema == "public" && s.Table == table {
			return s.State
		}
	}
	return ""
}

// growSource starts a cluster whose publication has items but not later
// (which has rows), and catches up once.
func growSource(t *testing.T, settings map[string]string) (*pgtest.Cluster, string, *catalog.Catalog, Options) {
	t.Helper()
	pg := pgtest.Start(t, pgtest.Options{Settings: settings})
	url := pg.CreateDB(t, "grow")
	pg.Exec(t, "grow", fmt.Sprintf(itemsDDL, "items"), fmt.Sprintf(itemsDDL, "later"),
		"INSERT INTO later SELECT g, 'l' || g, g FROM generate_series(1, 5000) g",
		"CREATE PUBLICATION cdclake_grow FOR TABLE items WITH (publish_via_partition_root = true)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	return pg, url, cat, o
}

// streaming waits until the ingest of growSource streams (a row written
// to items reaches the lake), so that a table added next joins while it
// streams.
func streaming(t *testing.T, pg *pgtest.Cluster, cat *catalog.Catalog) {
	t.Helper()
	pg.Exec(t, "grow", "INSERT INTO items VALUES (1, 'a', 1)")
	deadline := time.Now().Add(60 * time.Second)
	for len(scanRows(t, cat, "grow", "public", "items")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ingest does not stream")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// changelogExists reports whether a table's changelog is in the lake.
func changelogExists(t *testing.T, cat *catalog.Catalog, source, table string) bool {
	t.Helper()
	_, err := cat.Iceberg().LoadTable(context.Background(), lakeformat.ChangelogIdent(source, "public", table))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestAddedTableReloadInterrupted adds a table with rows to the
// publication of a running ingest and interrupts the copy of its rows
// after the stream has committed the table's first change (so its
// changelog exists): the next start must still copy the rows.
func TestAddedTableReloadInterrupted(t *testing.T) {
	t.Run("stopped while the copy waits for its slot", func(t *testing.T) {
		pg, url, cat, o := growSource(t, nil)
		// a slot's snapshot waits for the transactions running when it is
		// created, so this one holds the copy before its slot exists
		ctx := context.Background()
		open, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close(ctx)
		if _, err := open.Exec(ctx, "BEGIN; SELECT txid_current()"); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- Run(rctx, cat, o) }()
		streaming(t, pg, cat)
		pg.Exec(t, "grow", "ALTER PUBLICATION cdclake_grow ADD TABLE later", "UPDATE later SET name = 'moved' WHERE id = 1")
		deadline := time.Now().Add(60 * time.Second)
		for !changelogExists(t, cat, "grow", "later") {
			if time.Now().After(deadline) {
				t.Fatal("the stream did not commit the added table's change")
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel() // a stop (SIGTERM) while the copy waits
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := open.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if err := catchUp(t, cat, o); err != nil {
			t.Fatal(err)
		}
		compareState(t, cat, url, "grow", "later")
		if st := snapshotState(t, cat, "grow", "later"); st != catalog.SnapshotDone {
			t.Errorf("snapshot record of the added table = %q, want %q", st, catalog.SnapshotDone)
		}
	})

	t.Run("no replication slot to spare", func(t *testing.T) {
		pg, url, cat, o := growSource(t, map[string]string{"max_replication_slots": "1"})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cat, o) }()
		streaming(t, pg, cat)
		pg.Exec(t, "grow", "ALTER PUBLICATION cdclake_grow ADD TABLE later", "UPDATE later SET name = 'moved' WHERE id = 1")
		err := <-done
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "53400" {
			t.Fatalf("ingest with no slot to spare for the copy: %v, want all replication slots in use", err)
		}
		// the copy is recorded before its slot, so a start resumes it
		if st := snapshotState(t, cat, "grow", "later"); st != catalog.SnapshotRunning {
			t.Errorf("snapshot record of the added table = %q after its copy failed, want %q", st, catalog.SnapshotRunning)
		}
		pg.Exec(t, "postgres", "ALTER SYSTEM SET max_replication_slots = 4")
		pg.Stop()
		if err := pg.Restart(); err != nil {
			t.Fatal(err)
		}
		if err := catchUp(t, cat, o); err != nil {
			t.Fatal(err)
		}
		compareState(t, cat, url, "grow", "later")
		compareState(t, cat, url, "grow", "items")
	})
}

// TestPublishedTableWithoutRecord stops ingest between the stream's first
// commit of a table added to the publication and its copy (the copy is
// off), then starts it again with copies on: the table's rows must be
// copied, although its changelog exists.
func TestPublishedTableWithoutRecord(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "norec")
	pg.Exec(t, "norec", fmt.Sprintf(itemsDDL, "items"), fmt.Sprintf(itemsDDL, "later"),
		"INSERT INTO later SELECT g, 'l' || g, g FROM generate_series(1, 3000) g",
		"CREATE PUBLICATION cdclake_norec FOR TABLE items WITH (publish_via_partition_root = true)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "norec", "ALTER PUBLICATION cdclake_norec ADD TABLE later", "UPDATE later SET name = 'moved' WHERE id = 1")
	// the stream commits the change; no copy starts (as when a stop comes
	// before the copy is recorded)
	never := o
	never.Snapshot = "never"
	if err := catchUp(t, cat, never); err != nil {
		t.Fatal(err)
	}
	if got := len(scanRows(t, cat, "norec", "public", "later")); got != 1 {
		t.Fatalf("changelog of the added table has %d rows, want the streamed change", got)
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "norec", "later")
}

// TestDroppedTableSnapshotRetired interrupts an initial snapshot, drops one
// of its tables, and starts again: the source must not fail on the missing
// table at every start; the other table is copied and the dropped table's
// record retired.
func TestDroppedTableSnapshotRetired(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "dropped")
	pg.Exec(t, "dropped", fmt.Sprintf(itemsDDL, "items"), fmt.Sprintf(itemsDDL, "gone"),
		"INSERT INTO items SELECT g, 'i' || g, g FROM generate_series(1, 2000) g",
		"INSERT INTO gone SELECT g, 'g' || g, g FROM generate_series(1, 2000) g")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	errCrash := errors.New("injected crash")
	o := Options{Source: url, Hooks: Hooks{AfterUpload: func(string) error { return errCrash }}}
	if err := catchUp(t, cat, o); !errors.Is(err, errCrash) {
		t.Fatalf("snapshot with crash hook: %v", err)
	}
	if st := snapshotState(t, cat, "dropped", "gone"); st != catalog.SnapshotRunning {
		t.Fatalf("snapshot record of gone = %q after the crash, want %q", st, catalog.SnapshotRunning)
	}
	pg.Exec(t, "dropped", "DROP TABLE gone", "UPDATE items SET name = 'late' WHERE id = 5")
	o.Hooks = Hooks{}
	for i := range 2 {
		if err := catchUp(t, cat, o); err != nil {
			t.Fatalf("start %d after the table was dropped: %v", i+1, err)
		}
	}
	compareState(t, cat, url, "dropped", "items")
	if st := snapshotState(t, cat, "dropped", "gone"); st != catalog.SnapshotDropped {
		t.Errorf("snapshot record of the dropped table = %q, want %q", st, catalog.SnapshotDropped)
	}
}
