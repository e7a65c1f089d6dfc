package query

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
	"github.com/cdclake/cdclake/query/internal/shoptest"
)

// The tables of the identity tests: big is TOASTed out of line and most
// updates leave it alone, so PostgreSQL sends it as unchanged ('u').
func identityDDL(table, identity string) []string {
	return []string{
		"CREATE TABLE " + table + " (id int PRIMARY KEY, big text, val text, n int)",
		"ALTER TABLE " + table + " ALTER COLUMN big SET STORAGE EXTERNAL",
		"ALTER TABLE " + table + " REPLICA IDENTITY " + identity,
	}
}

// bigRows inserts rows with ids lo..hi and a different ~3 kB big each.
func bigRows(table string, lo, hi int) string {
	return "INSERT INTO " + table + " SELECT g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 100) i), 'v' || g, g FROM generate_series(" +
		strconv.Itoa(lo) + ", " + strconv.Itoa(hi) + ") g"
}

const identityQuery = "SELECT id, md5(big), val, n FROM public.%s ORDER BY id"

// checkWhole compares every row and column of public.<table> with the
// source through the fresh view, and, when compacted, through an Iceberg
// scan of the snapshot table.
func checkWhole(t *testing.T, e *Engine, s *shoptest.Shop, table, when string, compacted bool) {
	t.Helper()
	q := strings.Replace(identityQuery, "%s", table, 1)
	want := shoptest.PGRows(t, s.URL, q)
	if len(want) == 0 {
		t.Fatalf("%s: source table %s is empty", when, table)
	}
	res, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: fresh view: %v", when, err)
	}
	got := resultRows(res)
	res.Release()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: fresh view public.%s (%d rows):\n%s\nsource (%d rows):\n%s", when, table, len(got), head(diffRows(got, want)), len(want), head(diffRows(want, got)))
	}
	if !compacted {
		return
	}
	got = identityIcebergRows(t, s, table)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: Iceberg scan of the compacted %s (%d rows):\n%s\nsource (%d rows):\n%s", when, table, len(got), head(diffRows(got, want)), len(want), head(diffRows(want, got)))
	}
}

// diffRows returns the rows of a that b lacks.
func diffRows(a, b [][]string) [][]string {
	in := map[string]bool{}
	for _, r := range b {
		in[strings.Join(r, "|")] = true
	}
	var out [][]string
	for _, r := range a {
		if !in[strings.Join(r, "|")] {
			out = append(out, r)
		}
	}
	return out
}

// icebergRows reads the snapshot table with iceberg-go, in the form of
// identityQuery.
func identityIcebergRows(t *testing.T, s *shoptest.Shop, table string) [][]string {
	t.Helper()
	ctx := context.Background()
	tbl, err := s.Cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(s.DB, "public", table))
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	var out [][]string
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) int {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Fatalf("column %s missing from %v", name, rec.Schema())
			}
			return idx[0]
		}
		cols := []int{col("id"), col("big"), col("val"), col("n")}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, len(cols))
			for j, c := range cols {
				v, ok := Text(rec.Column(c), i)
				switch {
				case !ok:
					v = "NULL"
				case j == 1:
					sum := md5.Sum([]byte(v))
					v = hex.EncodeToString(sum[:])
				}
				row[j] = v
			}
			out = append(out, row)
		}
	}
	slices.SortFunc(out, func(a, b []string) int {
		x, _ := strconv.Atoi(a[0])
		y, _ := strconv.Atoi(b[0])
		return x - y
	})
	return out
}

func countOf(t *testing.T, e *Engine, q string) string {
	t.Helper()
	res, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	return resultRows(res)[0][0]
}

// TestReplicaIdentityFullWithKey (issue 17, case 5): with REPLICA
// IDENTITY FULL every update carries the whole old row; an update that
// keeps the primary key is an update of that key (no delete), and the
// TOASTed column it leaves alone keeps its value in the fresh view and
// after compaction.
func TestReplicaIdentityFullWithKey(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	pg.CreateDB(t, "full")
	pg.Exec(t, "full", identityDDL("t", "FULL")...)
	pg.Exec(t, "full", bigRows("t", 1, 5)) // initial copy
	s := shoptest.Attach(t, pg, "full", loc.URL(), nil)
	e := openEngine(t, s.Cat, Options{Lake: loc})

	pg.Exec(t, "full", bigRows("t", 6, 9),
		"UPDATE t SET val = 'x' WHERE id IN (1, 6)",
		"UPDATE t SET n = n + 100 WHERE id IN (1, 2, 7)",
		"DELETE FROM t WHERE id = 8")
	s.CatchUp(t)
	if n := countOf(t, e, "SELECT count(*) FROM public.t__changes WHERE _cdc_op = 'd'"); n != "1" {
		t.Errorf("%s deletes in the changelog, want 1: an update that keeps the primary key is no key change", n)
	}
	checkWhole(t, e, s, "t", "streamed", false)
	compactAll(t, s)
	checkWhole(t, e, s, "t", "compacted", true)

	pg.Exec(t, "full", "UPDATE t SET val = 'y' WHERE id IN (2, 7)",
		"UPDATE t SET val = 'z' WHERE id = 2",
		"UPDATE t SET id = 40 WHERE id = 4",
		"DELETE FROM t WHERE id = 3")
	s.CatchUp(t)
	checkWhole(t, e, s, "t", "snapshot plus tail", false)
	compactAll(t, s)
	checkWhole(t, e, s, "t", "compacted again", true)
}

// TestKeyChangeKeepsUnchangedToast (issue 17, case 6): a primary-key
// change leaves a TOASTed column unchanged, which PostgreSQL does not
// send; its value is the old key's. The fresh view and the compacted
// table agree with the source, before and after compactions, with the
// default replica identity and with FULL.
func TestKeyChangeKeepsUnchangedToast(t *testing.T) {
	pg := pgtest.Start(t)
	for _, identity := range []string{"DEFAULT", "FULL"} {
		t.Run(identity, func(t *testing.T) {
			db := "keys" + strings.ToLower(identity)
			loc := shoptest.FileLake(t)
			pg.CreateDB(t, db)
			pg.Exec(t, db, identityDDL("t", identity)...)
			pg.Exec(t, db, bigRows("t", 1, 8))
			s := shoptest.Attach(t, pg, db, loc.URL(), nil)
			e := openEngine(t, s.Cat, Options{Lake: loc})

			pg.Exec(t, db, bigRows("t", 10, 12),
				"UPDATE t SET id = 110 WHERE id = 10",                                            // a streamed row moves
				"UPDATE t SET id = 111 WHERE id = 11",                                            // twice
				"UPDATE t SET id = 211, val = 'twice' WHERE id = 111",                            // ...
				"UPDATE t SET n = -1 WHERE id = 211",                                             // then changes in place
				"UPDATE t SET id = 101 WHERE id = 1",                                             // an initial-copy row moves
				"DELETE FROM t WHERE id = 5; UPDATE t SET val = 'same transaction' WHERE id = 6", // no key change
				"DELETE FROM t WHERE id = 2",
				"UPDATE t SET id = 2 WHERE id = 7", // into a key deleted before
				"UPDATE t SET id = 12 WHERE id = 12")
			s.CatchUp(t)
			checkWhole(t, e, s, "t", "streamed", false)
			compactAll(t, s)
			checkWhole(t, e, s, "t", "compacted", true)

			pg.Exec(t, db,
				"UPDATE t SET id = 300 WHERE id = 3",               // a snapshot row moves
				"UPDATE t SET id = 301 WHERE id = 300",             // and again
				"UPDATE t SET id = 3, val = 'back' WHERE id = 301", // back to its first key
				"UPDATE t SET id = 1 WHERE id = 101",
				"DELETE FROM t WHERE id = 4; UPDATE t SET id = 4 WHERE id = 8", // delete, then move into it
				"UPDATE t SET val = 'after' WHERE id = 110")
			s.CatchUp(t)
			checkWhole(t, e, s, "t", "snapshot plus tail", false)
			compactAll(t, s)
			checkWhole(t, e, s, "t", "compacted again", true)
		})
	}
}

// TestKeylessTable (issue 17, case 8): a table without a primary key
// (REPLICA IDENTITY FULL) is a multiset. Whether the initial copy or the
// stream created its changelog, it has no key; the fresh view holds every
// row as often as the source does, duplicates included; compaction leaves
// it alone (no snapshot table), so the view keeps agreeing after it.
func TestKeylessTable(t *testing.T) {
	pg := pgtest.Start(t)
	loc := shoptest.FileLake(t)
	ddl := func(table string) []string {
		return []string{
			"CREATE TABLE " + table + " (msg text, n int, big text)",
			"ALTER TABLE " + table + " ALTER COLUMN big SET STORAGE EXTERNAL",
			"ALTER TABLE " + table + " REPLICA IDENTITY FULL",
		}
	}
	big := "(SELECT string_agg(md5(random()::text || i), '') FROM generate_series(1, 100) i)"
	dup := func(table string) string {
		return "INSERT INTO " + table + " SELECT 'x', 1, b FROM " + big + " s(b), generate_series(1, 3); INSERT INTO " + table + " VALUES ('y', 2, 'small'), ('y', 2, 'small')"
	}
	one := func(table, where string) string {
		return "(SELECT ctid FROM " + table + " WHERE " + where + " LIMIT 1)"
	}
	pg.CreateDB(t, "keyless")
	pg.Exec(t, "keyless", ddl("copied")...)
	pg.Exec(t, "keyless", dup("copied")) // before the first ingest: the initial copy
	s := shoptest.Attach(t, pg, "keyless", loc.URL(), nil)
	pg.Exec(t, "keyless", ddl("streamed")...)
	pg.Exec(t, "keyless", dup("streamed"))
	for _, table := range []string{"copied", "streamed"} {
		pg.Exec(t, "keyless", dup(table),
			"DELETE FROM "+table+" WHERE ctid = "+one(table, "msg = 'x'"),           // one of the duplicates
			"UPDATE "+table+" SET n = n + 10 WHERE ctid = "+one(table, "msg = 'x'"), // big unchanged (TOAST)
			"UPDATE "+table+" SET msg = 'z' WHERE ctid = "+one(table, "msg = 'y'"),
			"UPDATE "+table+" SET n = n WHERE ctid = "+one(table, "msg = 'x'"), // a row changed to itself
			"UPDATE "+table+" SET msg = msg WHERE msg = 'y'",
			"INSERT INTO "+table+" VALUES (NULL, NULL, NULL), (NULL, NULL, NULL)",
			// the rows there are read the default without a change sent
			"ALTER TABLE "+table+" ADD COLUMN flag int DEFAULT 7",
			"DELETE FROM "+table+" WHERE ctid = "+one(table, "msg = 'x'"),
			"UPDATE "+table+" SET n = n + 1 WHERE msg = 'z'")
	}
	s.CatchUp(t)
	e := openEngine(t, s.Cat, Options{Lake: loc})
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		for _, table := range []string{"copied", "streamed"} {
			q := "SELECT msg, n, md5(big), flag FROM public." + table
			want := shoptest.PGRows(t, s.URL, q)
			res, err := e.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got := resultRows(res)
			res.Release()
			sortRows(got)
			sortRows(want)
			if len(want) < 10 {
				t.Fatalf("source %s has %d rows; the test wants duplicates", table, len(want))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: fresh view public.%s (%d rows):\n%s\nsource (%d rows):\n%s", when, table, len(got), head(got), len(want), head(want))
			}
		}
	}
	check("streamed")
	for _, table := range []string{"copied", "streamed"} {
		tbl, err := s.Cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(s.DB, "public", table))
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		if err := json.Unmarshal([]byte(tbl.Properties()[lakeformat.PropPrimaryKey]), &keys); err != nil || len(keys) != 0 {
			t.Errorf("changelog of %s: %s = %q (%v), want no key", table, lakeformat.PropPrimaryKey, tbl.Properties()[lakeformat.PropPrimaryKey], err)
		}
	}
	if _, err := compact.New(s.Cat, compact.Options{}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"copied", "streamed"} {
		if _, err := s.Cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(s.DB, "public", table)); err == nil {
			t.Errorf("compaction made a snapshot table of the keyless %s", table)
		}
	}
	check("after compaction")
}

func sortRows(rows [][]string) {
	slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) })
}
