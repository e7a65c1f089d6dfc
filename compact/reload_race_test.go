package compact

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
)

// TestCompactBetweenReloadSlotAndCopy (issue 16 case 8) stops a reload
// right after its temporary slot has fixed the copy's position P, before
// the copy starts; meanwhile the stream commits changes past P and
// compaction runs. Compaction must not move the snapshot table's
// watermark past P-1, where the reload's rows land later: the reload
// must hold compaction from before its slot exists. The lake first misses
// updates and deletes (made while the publication only published
// inserts), so only the reload's rows can repair it, and the snapshot
// table must end up equal to the source.
func TestCompactBetweenReloadSlotAndCopy(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", ddl...)
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	ctx := context.Background()
	o := Options{FileSize: 64 << 10}

	catchUp(t, cat, url)
	w := newWorkload(8)
	w.run(t, url, 60)
	catchUp(t, cat, url)
	compactAll(t, cat, o)
	src, err := cat.Source(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	pub := pgx.Identifier{src.Publication}.Sanitize()
	pg.Exec(t, "shop", "ALTER PUBLICATION "+pub+" SET (publish = 'insert')",
		"UPDATE t SET val = 'unseen' WHERE id % 3 = 0",
		"DELETE FROM t WHERE id % 5 = 0",
		"ALTER PUBLICATION "+pub+" SET (publish = 'insert, update, delete, truncate')")
	w.live = slices.DeleteFunc(w.live, func(id int) bool { return id%5 == 0 })

	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- ingest.Run(streamCtx, cat, ingest.Options{Source: url, FlushAge: 100 * time.Millisecond})
	}()
	w.run(t, url, 1)
	waitWatermark(t, cat, walLSN(t, url))

	// the reload, stopped between its slot and its copy
	atSlot := make(chan uint64)
	release := make(chan struct{})
	hooks := ingest.Hooks{AfterReloadSlot: func(lsn uint64) error {
		atSlot <- lsn
		<-release
		return nil
	}}
	reloadDone := make(chan error, 1)
	go func() {
		reloadDone <- ingest.Reload(ctx, cat, ingest.Options{Source: url, Hooks: hooks}, []string{"public.t"})
	}()
	var p uint64
	select {
	case p = <-atSlot:
	case err := <-reloadDone:
		t.Fatalf("the reload ended before its slot: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the reload did not create its slot within a minute")
	}

	// the stream commits past P, and compaction runs
	w.run(t, url, 40)
	waitWatermark(t, cat, walLSN(t, url))
	if l := changelogLSN(t, cat, "t"); l <= p {
		t.Fatalf("the changelog of t is at %d, not past the reload's position %d", l, p)
	}
	compactAll(t, cat, o)
	if got := snapshotLSN(t, cat, "t"); got > p-1 {
		t.Errorf("compaction moved t's watermark to %d, past %d where the reload's rows land", got, p-1)
	}
	close(release)
	select {
	case err := <-reloadDone:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the reload did not finish within 2 minutes")
	}
	if rec := copyOf(t, cat, "t"); rec.LSN != p {
		t.Fatalf("the reload's record is at %d, its slot's position %d", rec.LSN, p)
	}
	w.run(t, url, 20)
	waitWatermark(t, cat, walLSN(t, url))
	stopStream()
	if err := <-streamDone; err != nil {
		t.Fatalf("streaming ingest: %v", err)
	}
	compactAll(t, cat, o)
	compareRows(t, fmt.Sprintf("t after a reload at %d", p), snapshotRows(t, cat, "shop", "t", tLakeCols), sourceRows(t, url, "t", tCols))
	compareRows(t, "u", snapshotRows(t, cat, "shop", "u", uLakeCols), sourceRows(t, url, "u", uCols))
}
