package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStart(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	c.Exec(t, "postgres", "CREATE ROLE alice LOGIN PASSWORD 'secret'")
	if _, err := pgx.Connect(ctx, c.UserURL("alice", "wrong", "postgres")); err == nil {
		t.Fatal("wrong password accepted")
	}
	c2, err := pgx.Connect(ctx, c.UserURL("alice", "secret", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	c2.Close(ctx)
}
