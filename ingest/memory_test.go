package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/procstat"
)

// heapWatch samples the heap, with the collector's target at 10 %, until
// stopped, and keeps its peak above the live heap at the start.
type heapWatch struct {
	stop    chan struct{}
	peak    chan uint64
	restore func()
}

// liveHeap returns the bytes of heap objects, live or not yet collected;
// with the collector's target at 10 % (see gcTight) that follows the live
// heap closely.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gcTight makes the garbage collector run when the heap has grown by 10 %
// since the last collection, until the returned function is called.
func gcTight() func() {
	old := debug.SetGCPercent(10)
	return func() { debug.SetGCPercent(old) }
}

func watchHeap() *heapWatch {
	restore := gcTight()
	runtime.GC()
	base := liveHeap()
	w := &heapWatch{stop: make(chan struct{}), peak: make(chan uint64, 1), restore: restore}
	go func() {
		var peak uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := liveHeap(); v > base && v-base > peak {
				peak = v - base
			}
			select {
			case <-w.stop:
				w.peak <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// done returns the peak growth of the live heap, in bytes.
func (w *heapWatch) done() uint64 {
	close(w.stop)
	w.restore()
	return <-w.peak
}

// streamTxns returns how many transactions PostgreSQL streamed to the slot
// while they ran.
func streamTxns(t *testing.T, pg *pgtest.Cluster, db, slot string) int64 {
	t.Helper()
	var n int64
	if err := pg.QueryRow(db, fmt.Sprintf("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = '%s'", slot), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLargeTransactionProtocol1Memory ingests a transaction of 300,000
// rows (about 80 MB of changes) sent whole at its commit, as PostgreSQL
// before 14 does (protocol 1, no streaming), under a 4 MiB memory budget:
// it must be written in partial batches, so that the live heap stays
// within the budget plus a bounded overhead, and land exactly once.
func TestLargeTransactionProtocol1Memory(t *testing.T) {
	pg := streamingCluster(t) // would stream it under protocol 2
	const db = "proto1mem"
	url := pg.CreateDB(t, db)
	pg.Exec(t, db, "CREATE TABLE a (id int PRIMARY KEY, val text)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	const budget = 4 << 20
	o := Options{Source: url, MemoryBudget: budget, SpillDir: t.TempDir(), protocol1: true}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	const n = 300_000
	pg.Exec(t, db, largeInsert(1, n))

	staged := 0
	o.Hooks = Hooks{AfterStage: func(string) error { staged++; return nil }}
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeakRSS()
	w := watchHeap()
	err := catchUp(t, cat, o)
	peak := w.done()
	rss := procstat.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if s := streamTxns(t, pg, db, "cdclake_"+db); s != 0 {
		t.Fatalf("PostgreSQL streamed %d transactions: the test does not run under protocol 1", s)
	}
	t.Logf("live heap peak %.1f MiB above the start, peak RSS %d MiB, %d stages, budget %d MiB", float64(peak)/(1<<20), rss>>20, staged, budget>>20)
	if staged < 20 {
		t.Errorf("the transaction was written in %d stages, want partial batches of at most a sixteenth of the budget (1 MiB)", staged)
	}
	// chunks of 1 MiB, at most three cut and not committed, the Parquet
	// writer and the rows in Arrow form: far below the transaction's size
	if limit := uint64(budget + 40<<20); peak > limit {
		t.Errorf("live heap grew by %.1f MiB, over the budget plus 40 MiB (%.1f MiB)", float64(peak)/(1<<20), float64(limit)/(1<<20))
	}
	// the documented bound: the budget plus a fixed 256 MiB (the soft
	// memory limit cdclake ingest sets)
	if rss > budget+256<<20 {
		t.Errorf("peak RSS %d MiB, over the budget plus 256 MiB", rss>>20)
	}
	checkOnce(t, cat, db, idRange(1, n))
}

// TestStopDuringLargeTransactionProtocol1 stops ingest (a crash, then a
// clean stop) while a transaction sent whole at its commit (protocol 1) is
// being written in partial batches: nothing of it may be committed or
// acknowledged, and the restart must bring every row exactly once.
func TestStopDuringLargeTransactionProtocol1(t *testing.T) {
	pg := pgtest.Start(t)
	errCrash := errors.New("injected crash")
	for _, crash := range []bool{true, false} {
		name := map[bool]string{true: "crash", false: "clean stop"}[crash]
		t.Run(name, func(t *testing.T) {
			db := map[bool]string{true: "proto1crash", false: "proto1stop"}[crash]
			url := pg.CreateDB(t, db)
			pg.Exec(t, db, "CREATE TABLE a (id int PRIMARY KEY, val text)")
			cat := openCatalog(t, "file://"+t.TempDir(), nil)
			// small transactions stay buffered until the large one's first chunk
			o := Options{Source: url, MemoryBudget: 1 << 20, SpillDir: t.TempDir(), FlushAge: time.Hour, FlushRows: 1 << 30, protocol1: true}
			if err := catchUp(t, cat, o); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				pg.Exec(t, db, fmt.Sprintf("INSERT INTO a VALUES (%d, 'small')", i))
			}
			const n = 40_000 // about 10 MiB: ten partial batches
			pg.Exec(t, db, largeInsert(10, 10+n-1))

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			stages := 0
			stopping := o
			stopping.CatchUp = true
			stopping.Hooks = Hooks{AfterStage: func(string) error {
				if stages++; stages == 3 {
					if crash {
						return errCrash
					}
					cancel()
				}
				return nil
			}}
			err := Run(ctx, cat, stopping)
			switch {
			case stages < 3:
				t.Fatalf("%d stages before the run ended (%v): the stop was not inside the transaction", stages, err)
			case crash && !errors.Is(err, errCrash):
				t.Fatalf("run with crash hook: %v, want the injected crash", err)
			case !crash && err != nil:
				t.Fatalf("run stopped by its context: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // the last status update
			src, err := cat.Source(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			if c := confirmedLSN(t, pg, db, "cdclake_"+db); c > src.LSN {
				t.Fatalf("after the stop the slot confirmed %s, past the catalog watermark %s", pglogrepl.LSN(c), pglogrepl.LSN(src.LSN))
			}
			if err := catchUp(t, cat, o); err != nil {
				t.Fatalf("restart after the stop: %v", err)
			}
			checkOnce(t, cat, db, append(idRange(1, 3), idRange(10, 10+n-1)...))
		})
	}
}

// TestSpoolReleasesMemoryAfterSpill spools eight transactions that each
// fill the spool's budget and spill, then measures the live heap: the
// spooled messages in memory, capacity included, must stay within the
// budget however many transactions spilled.
func TestSpoolReleasesMemoryAfterSpill(t *testing.T) {
	const budget = 4 << 20
	s := newSpool(t.TempDir(), budget)
	defer s.close()
	msg := make([]byte, 64<<10)
	runtime.GC()
	base := liveHeap()
	added := map[uint32]int{}
	for xid := uint32(1); xid <= 8; xid++ {
		// until it spills, then a few more messages
		for more := 4; more > 0; {
			if err := s.add(xid, xid, msg); err != nil {
				t.Fatal(err)
			}
			added[xid]++
			if s.txns[xid].f != nil {
				more--
			}
		}
	}
	runtime.GC()
	held := int64(liveHeap()) - int64(base)
	t.Logf("live heap %.1f MiB above the start after 8 transactions spilled (budget %d MiB)", float64(held)/(1<<20), budget>>20)
	if held > budget+1<<20 {
		t.Errorf("the spool holds %.1f MiB after spilling, over its %d MiB budget", float64(held)/(1<<20), budget>>20)
	}
	// every message is still there, in order
	for xid := uint32(1); xid <= 8; xid++ {
		n := 0
		if err := s.each(xid, func(m []byte) error {
			if len(m) != len(msg) {
				return fmt.Errorf("message of %d bytes, want %d", len(m), len(msg))
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != added[xid] {
			t.Errorf("transaction %d: %d messages read back, %d added", xid, n, added[xid])
		}
	}
}
