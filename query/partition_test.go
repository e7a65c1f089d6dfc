package query

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// partitionDDL is a table partitioned by year with two partitions of
// rows, copied by the initial snapshot.
var partitionDDL = []string{
	"CREATE TABLE m (id int, day date, v text, n numeric(8,2), PRIMARY KEY (id, day)) PARTITION BY RANGE (day)",
	"CREATE TABLE m_2025 PARTITION OF m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
	"CREATE TABLE m_2026 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
	"INSERT INTO m SELECT g, date '2025-01-01' + 2 * g, 'a' || g, g / 4.0 FROM generate_series(1, 300) g", // both partitions
}

const partitionQuery = "SELECT id, day, v, n FROM public.m ORDER BY id"

// partitionCases are the partition maintenance PostgreSQL does not
// replicate when it publishes through the partition root.
var partitionCases = []struct {
	name     string
	ddl      []string
	noReload bool // the partition set changes without rows to copy
}{
	{"truncate", []string{"TRUNCATE m_2025"}, false},
	{"detach", []string{"ALTER TABLE m DETACH PARTITION m_2025"}, false},
	{"drop", []string{"DROP TABLE m_2025"}, false},
	{"detach_drop", []string{"ALTER TABLE m DETACH PARTITION m_2025", "DROP TABLE m_2025"}, false},
	{"attach", []string{
		"CREATE TABLE m_2027 (LIKE m INCLUDING ALL)",
		"INSERT INTO m_2027 SELECT 5000 + g, date '2027-01-01' + g, 'new' || g, g FROM generate_series(1, 50) g",
		"ALTER TABLE m ATTACH PARTITION m_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')"}, false},
	{"create_empty", []string{"CREATE TABLE m_2027 PARTITION OF m FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')"}, true},
	{"attach_empty", []string{"CREATE TABLE m_2027 (LIKE m INCLUDING ALL)",
		"ALTER TABLE m ATTACH PARTITION m_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')"}, true},
}

// TestPartitionMaintenance (issue 17, case 7): after TRUNCATE, DETACH or
// DROP of a partition, or ATTACH of a table holding rows, made while
// ingest streams, the whole partitioned table in the lake equals the
// source's, in the fresh view and after a compaction (fresh view and an
// Iceberg scan of the compacted table).
func TestPartitionMaintenance(t *testing.T) {
	pg := pgtest.Start(t)
	for _, c := range partitionCases {
		t.Run(c.name, func(t *testing.T) {
			db := "part_" + c.name
			loc := shoptest.FileLake(t)
			pg.CreateDB(t, db)
			pg.Exec(t, db, partitionDDL...)
			s := shoptest.Attach(t, pg, db, loc.URL(), nil)
			e := openEngine(t, s.Cat, Options{Lake: loc})

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- ingest.Run(ctx, s.Cat, ingest.Options{Source: s.URL,
					FlushAge: 100 * time.Millisecond, PartitionCheckInterval: 200 * time.Millisecond})
			}()
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					cancel()
					if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("ingest: %v", err)
					}
				}
			}
			defer stop()
			pg.Exec(t, db, "UPDATE m SET v = 'upd' WHERE id % 7 = 0", // streamed changes in both partitions
				"DELETE FROM m WHERE id % 11 = 0",
				"INSERT INTO m VALUES (1000, '2025-06-01', 'streamed', 1), (1001, '2026-06-01', 'streamed', 2)")
			pg.Exec(t, db, c.ddl...)
			pg.Exec(t, db, "INSERT INTO m VALUES (2000, '2026-07-01', 'after', 3)") // a change after
			waitWhole(t, e, s.URL, 60*time.Second)
			if c.noReload {
				time.Sleep(time.Second) // several checks
				if n := countOf(t, e, "SELECT count(*) FROM public.m__changes WHERE _cdc_op = 't'"); n != "0" {
					t.Errorf("%s truncate markers: an empty new partition needs no reload", n)
				}
			}
			stop()
			checkPartitioned(t, e, s, "streamed")
			compactAll(t, s)
			checkPartitioned(t, e, s, "compacted")
		})
	}
}

// TestPartitionMaintenanceWhileStopped: a partition dropped and one
// attached while no ingest runs are seen by the next (catch-up) run.
func TestPartitionMaintenanceWhileStopped(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "partdown")
	pg.Exec(t, "partdown", partitionDDL...)
	s := shoptest.Attach(t, pg, "partdown", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	pg.Exec(t, "partdown", "UPDATE m SET v = 'upd' WHERE id % 7 = 0")
	s.CatchUp(t)
	compactAll(t, s)
	pg.Exec(t, "partdown", "DROP TABLE m_2025",
		"CREATE TABLE m_2027 (LIKE m INCLUDING ALL)",
		"INSERT INTO m_2027 SELECT 5000 + g, date '2027-01-01' + g, 'new' || g, g FROM generate_series(1, 50) g",
		"ALTER TABLE m ATTACH PARTITION m_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')")
	s.CatchUp(t)
	checkPartitioned(t, e, s, "caught up")
	compactAll(t, s)
	checkPartitioned(t, e, s, "compacted")
}

// waitWhole waits until the fresh view of public.m equals the source.
func waitWhole(t *testing.T, e *Engine, url string, limit time.Duration) {
	t.Helper()
	want := shoptest.PGRows(t, url, partitionQuery)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		res, err := e.Query(context.Background(), partitionQuery)
		if err == nil {
			got := resultRows(res)
			res.Release()
			if reflect.DeepEqual(got, want) {
				return
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// checkPartitioned compares every row and column of public.m with the
// source through the fresh view and, once compacted, an Iceberg scan of
// the snapshot table.
func checkPartitioned(t *testing.T, e *Engine, s *shoptest.Shop, when string) {
	t.Helper()
	want := shoptest.PGRows(t, s.URL, partitionQuery)
	res, err := e.Query(context.Background(), partitionQuery)
	if err != nil {
		t.Fatalf("%s: fresh view: %v", when, err)
	}
	got := resultRows(res)
	res.Release()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: fresh view public.m (%d rows), lacking from the source:\n%s\nsource (%d rows), lacking from the lake:\n%s",
			when, len(got), head(diffRows(got, want)), len(want), head(diffRows(want, got)))
	}
	if when != "compacted" {
		return
	}
	got = icebergRows(t, s, false, "public", "m", []string{"id", "day", "v", "n"})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: Iceberg scan of the compacted m (%d rows), lacking from the source:\n%s\nsource (%d rows), lacking from the lake:\n%s",
			when, len(got), head(diffRows(got, want)), len(want), head(diffRows(want, got)))
	}
}

// TestPartitionsAllDropped: when every partition is dropped, the reload
// of a partitioned table without partitions still commits (its truncate
// marker empties the table); found by internal/torture, where it was
// reloaded again and again and kept its old rows.
func TestPartitionsAllDropped(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "partnone")
	pg.Exec(t, "partnone", partitionDDL...)
	s := shoptest.Attach(t, pg, "partnone", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ingest.Run(ctx, s.Cat, ingest.Options{Source: s.URL,
			FlushAge: 100 * time.Millisecond, PartitionCheckInterval: 200 * time.Millisecond})
	}()
	pg.Exec(t, "partnone", "DROP TABLE m_2025", "DROP TABLE m_2026")
	waitWhole(t, e, s.URL, 30*time.Second)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("ingest: %v", err)
	}
	checkPartitioned(t, e, s, "streamed")
}
