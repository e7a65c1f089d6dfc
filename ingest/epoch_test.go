package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cdclake/cdclake/internal/pgtest"
)

// TestResnapshotMovedCrash moves a source to a fresh cluster whose WAL
// positions are below the lake's, and crashes the resnapshot at its copy's
// commit, after the new epoch and the new slot are recorded. The restart,
// without --resnapshot, must finish the copy in the new epoch: the lake
// then resolves to the new server's rows, and later changes reach it.
func TestResnapshotMovedCrash(t *testing.T) {
	a := pgtest.Start(t)
	urlA := a.CreateDB(t, "mv")
	a.Exec(t, "mv", fmt.Sprintf(itemsDDL, "items"), "INSERT INTO items SELECT g, 'a' || g, g FROM generate_series(1, 100) g")
	for range 3 {
		a.Exec(t, "mv", "SELECT pg_switch_wal()", "INSERT INTO items VALUES (1000, 'w', 0)", "DELETE FROM items WHERE id = 1000")
	}
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	if err := catchUp(t, cat, Options{Source: urlA}); err != nil {
		t.Fatal(err)
	}
	a.Exec(t, "mv", "UPDATE items SET name = 'late' WHERE id > 90")
	if err := catchUp(t, cat, Options{Source: urlA}); err != nil {
		t.Fatal(err)
	}
	old, err := cat.Source(context.Background(), "mv")
	if err != nil {
		t.Fatal(err)
	}

	b := pgtest.Start(t)
	urlB := b.CreateDB(t, "mv")
	b.Exec(t, "mv", fmt.Sprintf(itemsDDL, "items"), "INSERT INTO items SELECT g, 'b' || g, g * 2 FROM generate_series(50, 150) g")
	crash := errors.New("crash at the copy's commit")
	o := Options{Source: urlB, Resnapshot: true, Hooks: Hooks{AfterUpload: func(string) error { return crash }}}
	if err := catchUp(t, cat, o); !errors.Is(err, crash) {
		t.Fatalf("resnapshot with a crash at its commit: %v, want the crash", err)
	}
	rec, err := cat.Source(context.Background(), "mv")
	if err != nil {
		t.Fatal(err)
	}
	if rec.LSNBase == 0 || rec.LSN <= old.LSN {
		t.Fatalf("after the crash the source record is %+v; want a new epoch above the old watermark %d", rec, old.LSN)
	}
	if err := catchUp(t, cat, Options{Source: urlB}); err != nil {
		t.Fatalf("restart without --resnapshot: %v", err)
	}
	compareState(t, cat, urlB, "mv", "items")
	b.Exec(t, "mv", "UPDATE items SET name = 'changed' WHERE id % 4 = 0", "DELETE FROM items WHERE id < 60",
		"INSERT INTO items SELECT g, 'new', 1 FROM generate_series(1, 10) g")
	if err := catchUp(t, cat, Options{Source: urlB}); err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, urlB, "mv", "items")
	after, err := cat.Source(context.Background(), "mv")
	if err != nil {
		t.Fatal(err)
	}
	if after.LSNBase != rec.LSNBase || after.LSN <= rec.LSN {
		t.Errorf("source record %+v after streaming in the new epoch; want base %d and a watermark past %d", after, rec.LSNBase, rec.LSN)
	}
}
