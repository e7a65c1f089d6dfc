package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/lakeformat"
)

// TestCompactCommand ingests a table, compacts it with the command and
// reads the snapshot table back.
func TestCompactCommand(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE orders (id int PRIMARY KEY, note text)")
	lakeDir := filepath.Join(t.TempDir(), "lake")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ingestArgs := []string{"ingest", "--source", url, "--lake", lakeDir, "--catch-up"}
	if err := run(ctx, ingestArgs); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "shop", "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 100) g",
		"UPDATE orders SET note = 'changed' WHERE id <= 10", "DELETE FROM orders WHERE id > 90")
	if err := run(ctx, ingestArgs); err != nil {
		t.Fatal(err)
	}

	compactCmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := (&compactCommand{out: &out}).Run(ctx, append([]string{"--lake", lakeDir}, args...))
		return out.String(), err
	}
	out, err := compactCmd("--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "shop.public.orders") || !strings.Contains(out, "create") {
		t.Errorf("dry run printed %q, want the table and create", out)
	}
	if out, err = compactCmd("--table", "shop.public.orders"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "shop.public.orders") {
		t.Errorf("compact printed %q, want the table", out)
	}

	lf := lakeFlags{lake: lakeDir}
	cat, _, err := lf.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent("shop", "public", "orders"))
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	if at.NumRows() != 90 {
		t.Errorf("snapshot table holds %d rows, want 90", at.NumRows())
	}
	if tbl.Properties()[lakeformat.PropSourceLSN] == "" {
		t.Error("snapshot table has no watermark property")
	}
}

func TestCompactCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--table", "orders"}, "want source.schema.table"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		err := (&compactCommand{out: &bytes.Buffer{}}).Run(context.Background(), append([]string{"--lake", filepath.Join(dir, "lake")}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
