package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// streamingCluster starts PostgreSQL streaming every transaction over
// 64 kB of changes while it runs (protocol 2).
func streamingCluster(t *testing.T) *pgtest.Cluster {
	return pgtest.Start(t, pgtest.Options{Settings: map[string]string{"logical_decoding_work_mem": "'64kB'"}})
}

// largeInsert inserts ids from..to with about 260 bytes of change each,
// in one transaction.
func largeInsert(from, to int) string {
	return fmt.Sprintf("INSERT INTO a SELECT g, repeat('x', 200) || g FROM generate_series(%d, %d) g", from, to)
}

// checkOnce checks that the changelog of a holds one insert of each id in
// ids and nothing else.
func checkOnce(t *testing.T, cat *catalog.Catalog, db string, ids []int64) {
	t.Helper()
	got := map[int64]int{}
	changes := readChanges(t, cat, db, "public", "a")
	for _, c := range changes {
		if c.Op != lakeformat.OpInsert {
			t.Fatalf("change %+v, want inserts only", c)
		}
		got[c.ID]++
	}
	missing, twice := 0, 0
	for _, id := range ids {
		switch got[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if missing > 0 || twice > 0 || len(changes) != len(ids) {
		t.Fatalf("changelog holds %d rows for %d inserted: %d ids missing, %d more than once", len(changes), len(ids), missing, twice)
	}
}

func idRange(from, to int) []int64 {
	var ids []int64
	for i := from; i <= to; i++ {
		ids = append(ids, int64(i))
	}
	return ids
}

// TestLargeTransactionBesideOtherWriter commits a transaction streamed by
// PostgreSQL, written in many partial batches (chunks of 1 MiB: about
// fifteen), while another writer commits to the same changelog before its
// final commit: the commit has to be made again on the table's new state
// with every file the transaction wrote.
func TestLargeTransactionBesideOtherWriter(t *testing.T) {
	pg := streamingCluster(t)
	const db = "besides"
	url := pg.CreateDB(t, db)
	pg.Exec(t, db, "CREATE TABLE a (id int PRIMARY KEY, val text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, MemoryBudget: 1 << 20, SpillDir: t.TempDir()}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, db, "INSERT INTO a VALUES (0, 'before')")
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	const n = 60_000 // about 15 MiB of changes: 15 chunks of 1 MiB
	pg.Exec(t, db, largeInsert(1, n))

	ctx := context.Background()
	other := 0
	o.Hooks = Hooks{AfterUpload: func(key string) error {
		if other++; other > 1 {
			return nil
		}
		// another writer (compaction, a reload) commits to the changelog
		tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(db, "public", "a"))
		if err != nil {
			return err
		}
		tx := tbl.NewTransaction()
		if err := tx.AddFiles(ctx, nil, nil, false); err != nil {
			return err
		}
		_, err = tx.Commit(ctx)
		return err
	}}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	if other < 2 {
		t.Fatalf("%d commit attempts of the large transaction, want a retry after the other writer's commit", other)
	}
	var streamed int64
	if err := pg.QueryRow(db, "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'cdclake_besides'", &streamed); err != nil {
		t.Fatal(err)
	}
	if streamed == 0 {
		t.Fatal("PostgreSQL streamed no transaction: the test does not reach the partial batches")
	}
	checkOnce(t, cat, db, idRange(0, n))
}

// confirmedLSN returns the slot's confirmed flush position.
func confirmedLSN(t *testing.T, pg *pgtest.Cluster, db, slot string) uint64 {
	t.Helper()
	var lsn pglogrepl.LSN
	if err := pg.QueryRow(db, fmt.Sprintf("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '%s'", slot), &lsn); err != nil {
		t.Fatal(err)
	}
	return uint64(lsn)
}

// TestCrashDuringLargeTransaction crashes while a streamed transaction is
// being committed, after its partial batches (the first of which carries
// small transactions committed before it) were written: the slot must
// never be acknowledged past the catalog's watermark, and the restart
// must bring every row exactly once.
func TestCrashDuringLargeTransaction(t *testing.T) {
	pg := streamingCluster(t)
	const db = "crashlarge"
	url := pg.CreateDB(t, db)
	pg.Exec(t, db, "CREATE TABLE a (id int PRIMARY KEY, val text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	// small transactions stay buffered until the large one's first chunk
	o := Options{Source: url, MemoryBudget: 1 << 20, SpillDir: t.TempDir(), FlushAge: time.Hour, FlushRows: 1 << 30}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		pg.Exec(t, db, fmt.Sprintf("INSERT INTO a VALUES (%d, 'small')", i))
	}
	const n = 20_000 // about 5 MiB: five partial batches
	pg.Exec(t, db, largeInsert(10, 10+n-1))

	ctx := context.Background()
	errCrash := errors.New("injected crash")
	crashing := o
	crashing.Hooks = Hooks{AfterUpload: func(string) error { return errCrash }}
	// watch the acknowledgements while it runs
	stop, watched := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				watched <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
			c := confirmedLSN(t, pg, db, "cdclake_"+db)
			src, err := cat.Source(ctx, db)
			if err != nil {
				watched <- err
				return
			}
			if c > src.LSN {
				watched <- fmt.Errorf("slot confirmed %s, past the catalog watermark %s", pglogrepl.LSN(c), pglogrepl.LSN(src.LSN))
				return
			}
		}
	}()
	err := catchUp(t, cat, crashing)
	close(stop)
	if werr := <-watched; werr != nil {
		t.Error(werr)
	}
	if !errors.Is(err, errCrash) {
		t.Fatalf("run with crash hook: %v, want the injected crash", err)
	}
	time.Sleep(200 * time.Millisecond) // the last status update
	src, err := cat.Source(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if c := confirmedLSN(t, pg, db, "cdclake_"+db); c > src.LSN {
		t.Fatalf("after the crash the slot confirmed %s, past the catalog watermark %s", pglogrepl.LSN(c), pglogrepl.LSN(src.LSN))
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatalf("restart after the crash: %v", err)
	}
	checkOnce(t, cat, db, append(idRange(1, 3), idRange(10, 10+n-1)...))
}

// lossyCatalog makes a table's commits and then answers the first with an
// error saying the commit failed: the answer of a commit that landed was
// lost.
type lossyCatalog struct {
	table.CatalogIO
	lost int
}

func (c *lossyCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, ups []table.Update) (table.Metadata, string, error) {
	meta, loc, err := c.CatalogIO.CommitTable(ctx, ident, reqs, ups)
	if err == nil && c.lost == 0 {
		c.lost++
		return nil, "", fmt.Errorf("answer lost: %w", table.ErrCommitFailed)
	}
	return meta, loc, err
}

// TestCommitAnswerLost commits a table's rows through a catalog that
// loses the answer of a commit that landed: the retry must not add the
// rows again.
func TestCommitAnswerLost(t *testing.T) {
	ctx := context.Background()
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	sk := newSink(cat, "lossy", Hooks{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	batch := func(from, n int, lsn int64) tableBatch {
		sc := arrow.NewSchema(append([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int32},
			{Name: "val", Type: arrow.BinaryTypes.String, Nullable: true}}, lakeformat.MetaFields()...), nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		defer b.Release()
		for i := range n {
			b.Field(0).(*array.Int32Builder).Append(int32(from + i))
			b.Field(1).(*array.StringBuilder).Append("v")
			appendCDC(b, 2, lakeformat.OpInsert, lsn, int64(i), 7, arrow.Timestamp(time.Now().UnixMicro()), nil)
		}
		return tableBatch{schema: "public", name: "a", keys: []string{"id"}, parts: []arrow.RecordBatch{b.NewRecordBatch()}}
	}
	first := batch(1, 10, 100)
	defer first.release()
	if err := sk.stage(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := sk.commitPending(ctx, "public.a", 110, true); err != nil {
		t.Fatal(err)
	}
	// the table as cached, bound to a catalog that loses an answer
	tbl := sk.tables["public.a"]
	lossy := &lossyCatalog{CatalogIO: cat.Iceberg()}
	sk.tables["public.a"] = table.New(tbl.Identifier(), tbl.Metadata(), tbl.MetadataLocation(), tbl.FS, lossy)
	second := batch(11, 10, 200)
	defer second.release()
	if err := sk.stage(ctx, second); err != nil {
		t.Fatal(err)
	}
	err := sk.commitPending(ctx, "public.a", 210, true)
	if lossy.lost != 1 {
		t.Fatalf("%d answers lost, want 1", lossy.lost)
	}
	if err != nil {
		t.Fatalf("commit whose answer was lost: %v", err)
	}
	checkOnce(t, cat, "lossy", idRange(1, 20))
}
