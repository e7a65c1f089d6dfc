package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/catalog/rest"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
)

func TestStatus(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t)
	url := pg.CreateDB(t, "shop")
	pg.Exec(t, "shop", "CREATE TABLE orders (id int PRIMARY KEY, note text)")
	lakeDir := filepath.Join(t.TempDir(), "lake")
	cat, err := catalog.Open(ctx, catalog.Options{URL: filepath.Join(lakeDir, "catalog.db"), Warehouse: "file://" + lakeDir})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	o := ingest.Options{Source: url, CatchUp: true, Snapshot: "never"}
	if err := ingest.Run(ctx, cat, o); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "shop", "INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 25) g")
	if err := ingest.Run(ctx, cat, o); err != nil {
		t.Fatal(err)
	}
	src, err := cat.Source(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	// the catch-up proved the lake complete through its start, a little
	// after the last commit: the lag counts from there
	if !src.CaughtUpAt.After(src.CommitTime) {
		t.Fatalf("caught up at %v, want after the last commit at %v", src.CaughtUpAt, src.CommitTime)
	}
	now := func() time.Time { return src.CaughtUpAt.Add(90 * time.Second) }

	t.Run("text", func(t *testing.T) {
		var out bytes.Buffer
		if err := (&statusCommand{out: &out, now: now}).Run(ctx, []string{"--lake", lakeDir}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out.String(), "\n")
		want := []string{
			"SOURCE STATE WATERMARK COMMITTED LAG SLOT LAG",
			"shop active " + pglogrepl.LSN(src.LSN).String() + " " + src.CommitTime.Format("2006-01-02 15:04:05Z") + " 1m30s -",
			"",
			"TABLE ROWS CHANGES LAST CHANGE LSN SCHEMA",
		}
		for i, w := range want {
			if i >= len(lines) || strings.Join(strings.Fields(lines[i]), " ") != w {
				t.Fatalf("line %d: want %q in\n%s", i, w, out.String())
			}
		}
		if f := strings.Fields(lines[4]); len(f) != 7 || f[0] != "shop.public.orders" || f[1] != "-" || f[2] != "25" || f[6] != "v0" {
			t.Errorf("table line %q", lines[4])
		}
	})

	t.Run("json", func(t *testing.T) {
		var out bytes.Buffer
		if err := (&statusCommand{out: &out, now: now}).Run(ctx, []string{"--lake", lakeDir, "--format", "json"}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Sources []rest.Source
			Tables  []rest.Table
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Sources) != 1 || got.Sources[0].Watermark.LSN != src.LSN || len(got.Tables) != 1 || got.Tables[0].Changelog.Rows != 25 {
			t.Errorf("json status: %s", out.String())
		}
	})

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no catalog", []string{"--lake", t.TempDir()}, "no catalog at"},
		{"bad format", []string{"--lake", lakeDir, "--format", "xml"}, "--format"},
		{"extra argument", []string{"--lake", lakeDir, "now"}, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := (&statusCommand{out: &bytes.Buffer{}, now: time.Now}).Run(ctx, c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}
