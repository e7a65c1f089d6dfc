package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/ingest"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
)

const secret = "s3cr3t-Pa55"

// TestIngestBadInput runs the ingest command on each kind of bad input
// and checks the one-line message, that no secret shows, and that nothing
// was created on the source.
func TestIngestBadInput(t *testing.T) {
	pg := pgtest.Start(t)
	pg.CreateDB(t, "shop")
	pg.Exec(t, "shop",
		"CREATE TABLE orders (id int PRIMARY KEY)",
		"CREATE ROLE repl LOGIN REPLICATION PASSWORD '"+secret+"'",
		"CREATE ROLE plain LOGIN PASSWORD '"+secret+"'")
	replica := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"wal_level": "replica"}})
	replica.CreateDB(t, "shop")

	// a running ingest holds the slot of source "busy"
	busyURL := pg.CreateDB(t, "busy")
	cat, err := catalog.Open(context.Background(), catalog.Options{URL: filepath.Join(t.TempDir(), "c.db"), Warehouse: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ingest.Run(ctx, cat, ingest.Options{Source: busyURL}) }()
	defer func() { cancel(); <-done }()
	waitSlotActive(t, pg, "busy", "cdclake_busy")

	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	url := func(user, db string) string { return pg.UserURL(user, secret, db) }
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable host", []string{"--source", "postgres://repl:" + secret + "@127.0.0.1:1/shop"}, "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"wrong password", []string{"--source", pg.UserURL("repl", "wrong-"+secret, "shop")}, `rejected user "repl"`},
		{"database missing", []string{"--source", url("repl", "nope")}, `database "nope" does not exist`},
		{"wal_level", []string{"--source", replica.URL("shop")}, `wal_level is "replica"`},
		{"no replication", []string{"--source", url("plain", "shop")}, `user "plain" lacks the REPLICATION attribute`},
		{"slot active", []string{"--source", pg.URL("busy")}, `replication slot "cdclake_busy" is in use by another process`},
		{"missing table", []string{"--source", url("repl", "shop"), "--tables", "public.orders,public.nope"}, "table public.nope named in --tables does not exist"},
		{"lake not writable", []string{"--source", pg.URL("shop"), "--lake", filepath.Join(notDir, "lake")}, "not"},
		{"bad lake scheme", []string{"--source", pg.URL("shop"), "--lake", "ftp://x/y"}, "ftp"},
	}
	for _, srv := range s3test.All(t) {
		srv.CreateBucket(t, "exists")
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{srv.Name + " bucket missing", []string{"--source", pg.URL("shop"), "--lake", "s3://missing/lake", "--catalog", filepath.Join(t.TempDir(), "c.db")}, `"missing"`})
		if srv.Name == "versitygw" { // gofakes3 does not check signatures
			cases = append(cases, struct {
				name string
				args []string
				want string
			}{srv.Name + " access denied", []string{"--source", pg.URL("shop"), "--lake", "s3://exists/lake", "--catalog", filepath.Join(t.TempDir(), "c.db")}, "denied"})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, srv := range s3test.All(t) {
				if strings.HasPrefix(tc.name, srv.Name+" ") {
					srv.Env(t)
					if strings.HasSuffix(tc.name, "denied") {
						t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"ingest", "--catch-up"}, tc.args...)
			if !strings.Contains(strings.Join(args, " "), "--lake") {
				args = append(args, "--lake", t.TempDir())
			}
			err := run(ctx, args)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error shows the password: %q", msg)
			}
		})
	}
	// nothing half-created: only the busy source has a slot and a publication
	var slots, pubs int
	for _, q := range []struct {
		sql string
		n   *int
	}{{"SELECT count(*) FROM pg_replication_slots", &slots}, {"SELECT count(*) FROM pg_publication", &pubs}} {
		if err := pg.QueryRow("shop", q.sql, q.n); err != nil {
			t.Fatal(err)
		}
	}
	if slots != 1 {
		t.Errorf("%d replication slots exist, want only the busy source's", slots)
	}
	if pubs != 0 {
		t.Errorf("database shop has %d publications after failed starts, want 0", pubs)
	}
}

func waitSlotActive(t *testing.T, pg *pgtest.Cluster, db, slot string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		err := pg.QueryRow(db, fmt.Sprintf("SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = '%s'), false)", slot), &active)
		if err == nil && active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s not active after 30 s (err %v)", slot, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
