package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// resolve folds a changelog into the current rows by primary key: the
// latest change per key wins, deletes drop the row, a truncate drops all
// rows before it. Values are rendered with fmt for comparison.
func resolve(rows []map[string]any, key string, cols []string) []string {
	state := map[string]map[string]any{}
	for _, r := range rows { // rows are ordered by (lsn, seq)
		switch r[lakeformat.ColOp] {
		case lakeformat.OpTruncate:
			state = map[string]map[string]any{}
		case lakeformat.OpDelete:
			delete(state, fmt.Sprint(r[key]))
		default:
			state[fmt.Sprint(r[key])] = r
		}
	}
	var out []string
	for _, r := range state {
		var vals []string
		for _, c := range cols {
			vals = append(vals, fmt.Sprint(r[c]))
		}
		out = append(out, strings.Join(vals, "|"))
	}
	sort.Strings(out)
	return out
}

// sourceRows renders a query's rows like resolve does.
func sourceRows(t *testing.T, url, sql string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, v := range vals {
			if v == nil {
				s = append(s, "<nil>")
			} else {
				s = append(s, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(s, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func compareState(t *testing.T, cat *catalog.Catalog, url, source, table string) {
	t.Helper()
	got := resolve(scanRows(t, cat, source, "public", table), "id", []string{"id", "name", "price"})
	want := sourceRows(t, url, "SELECT id, name, trim_scale(price)::text FROM "+table)
	if len(got) != len(want) {
		t.Fatalf("%s: lake has %d rows, source %d", table, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s row %d: lake %q, source %q", table, i, got[i], want[i])
		}
	}
}

const itemsDDL = "CREATE TABLE %s (id int PRIMARY KEY, name text, price numeric(12,2))"

// TestInitialSnapshot snapshots existing rows while writes go on and
// checks the lake's resolved state against the source.
func TestInitialSnapshot(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "snap")
	pg.Exec(t, "snap", fmt.Sprintf(itemsDDL, "items"),
		"INSERT INTO items SELECT g, 'item ' || g || E'\\ttab', g / 7.0 FROM generate_series(1, 60000) g",
		fmt.Sprintf(itemsDDL, "other"), "INSERT INTO other VALUES (1, 'x', 1)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, SnapshotWorkers: 3}

	// writes during the snapshot
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			wrote <- err
			return
		}
		defer conn.Close(context.Background())
		for i := 0; ; i++ {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			_, err := conn.Exec(context.Background(), fmt.Sprintf(
				"UPDATE items SET name = 'changed %d' WHERE id = %d; DELETE FROM items WHERE id = %d; INSERT INTO items VALUES (%d, 'new', 1.5)",
				i, 1+i*7, 2+i*7, 100000+i))
			if err != nil {
				wrote <- err
				return
			}
		}
	}()
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "snap", "items")
	compareState(t, cat, url, "snap", "other")
	snaps, err := cat.Snapshots(context.Background(), "snap")
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].State != catalog.SnapshotDone || snaps[0].Rows == 0 {
		t.Fatalf("snapshot records = %+v, want two done with rows", snaps)
	}
}

// TestSnapshotCrashResumes fails the snapshot's commit, restarts, and
// checks that the table is reloaded without duplicates.
func TestSnapshotCrashResumes(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "snapcrash")
	pg.Exec(t, "snapcrash", fmt.Sprintf(itemsDDL, "items"),
		"INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 20000) g")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	errCrash := errors.New("injected crash")
	o := Options{Source: url, Hooks: Hooks{AfterUpload: func(string) error { return errCrash }}}
	if err := catchUp(t, cat, o); !errors.Is(err, errCrash) {
		t.Fatalf("snapshot with crash hook: %v", err)
	}
	pg.Exec(t, "snapcrash", "DELETE FROM items WHERE id <= 100", "UPDATE items SET name = 'late' WHERE id = 500")
	o.Hooks = Hooks{}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "snapcrash", "items")
	var reads int
	for _, r := range scanRows(t, cat, "snapcrash", "public", "items") {
		if r[lakeformat.ColOp] == lakeformat.OpRead {
			reads++
		}
	}
	if reads != 19900 {
		t.Errorf("%d snapshot rows in the lake, want 19900 (one reload, no duplicates)", reads)
	}
}

// TestAddTableWhileStreaming adds a table with rows to the publication of
// a running ingest and checks its rows arrive, then a reload of it.
func TestAddTableWhileStreaming(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "grow")
	pg.Exec(t, "grow", fmt.Sprintf(itemsDDL, "items"), fmt.Sprintf(itemsDDL, "later"),
		"INSERT INTO later SELECT g, 'l' || g, g FROM generate_series(1, 5000) g",
		"CREATE PUBLICATION cdclake_grow FOR TABLE items WITH (publish_via_partition_root = true)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cat, o) }()
	pg.Exec(t, "grow", "INSERT INTO items VALUES (1, 'a', 1)",
		"ALTER PUBLICATION cdclake_grow ADD TABLE later",
		"UPDATE later SET name = 'moved' WHERE id = 1", "DELETE FROM later WHERE id = 2")
	waitCopied(t, cat, "grow", "later", 60*time.Second, "no snapshot of the added table after 60 s")
	pg.Exec(t, "grow", "UPDATE later SET name = 'after' WHERE id = 3")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "grow", "later")
	compareState(t, cat, url, "grow", "items")

	// an explicit reload while nothing changed keeps the same state
	if err := Reload(context.Background(), cat, o, []string{"public.later"}); err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "grow", "later")
}

// TestAddQuietTableWhileStreaming: a table added to the publication that
// then never changes is copied all the same (found by internal/torture:
// the copy waited for a first change that never came).
func TestAddQuietTableWhileStreaming(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "grow")
	pg.Exec(t, "grow", fmt.Sprintf(itemsDDL, "items"), fmt.Sprintf(itemsDDL, "quiet"),
		"INSERT INTO quiet SELECT g, 'q' || g, g FROM generate_series(1, 500) g",
		"CREATE PUBLICATION cdclake_grow FOR TABLE items WITH (publish_via_partition_root = true)")
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond, PartitionCheckInterval: 200 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cat, o) }()
	// streaming, past its start-up (which copies tables without a record)
	pg.Exec(t, "grow", "INSERT INTO items VALUES (1, 'a', 1)")
	for len(scanRows(t, cat, "grow", "public", "items")) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	pg.Exec(t, "grow", "ALTER PUBLICATION cdclake_grow ADD TABLE quiet")
	waitCopied(t, cat, "grow", "quiet", 30*time.Second, "the quiet table added to the publication was not copied within 30 s")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "grow", "quiet")
}

// TestDefaultPublicationSparesKeylessTables (issue 17, case 9): the
// publication cdclake creates by default lists tables rather than FOR ALL
// TABLES, so a keyless table a service creates later keeps its UPDATE and
// DELETE working; a new table with a key is added and copied.
func TestDefaultPublicationSparesKeylessTables(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "svc")
	pg.Exec(t, "svc", fmt.Sprintf(itemsDDL, "items"))
	cat := openCatalog(t, "file://"+t.TempDir(), nil)
	o := Options{Source: url, FlushAge: 100 * time.Millisecond, PartitionCheckInterval: 200 * time.Millisecond}
	if err := catchUp(t, cat, o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cat, o) }()
	pg.Exec(t, "svc", "CREATE TABLE audit (msg text)", "INSERT INTO audit VALUES ('a')")
	if err := pg.ExecErr("svc", "UPDATE audit SET msg = 'b'", "DELETE FROM audit"); err != nil {
		t.Errorf("the service's own UPDATE/DELETE on a keyless table failed: %v", err)
	}
	pg.Exec(t, "svc", fmt.Sprintf(itemsDDL, "later"), "INSERT INTO later SELECT g, 'l' || g, g FROM generate_series(1, 300) g")
	waitCopied(t, cat, "svc", "later", 30*time.Second, "a new table with a key was not added to the publication and copied within 30 s")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	compareState(t, cat, url, "svc", "later")
}

// waitCopied waits until the catalog records table's copy as done, and
// fails the test with msg after limit.
func waitCopied(t *testing.T, cat *catalog.Catalog, source, table string, limit time.Duration, msg string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		snaps, _ := cat.Snapshots(context.Background(), source)
		for _, s := range snaps {
			if s.Table == table && s.State == catalog.SnapshotDone {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
