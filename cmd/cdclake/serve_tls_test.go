package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/testcert"
)

// TestServeTLS runs cdclake serve with --pg-tls-cert and --pg-tls-key: pgx
// connects with sslmode=verify-full, a client without TLS is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile)
	if err := run(context.Background(), []string{"serve", "--lake", dir, "--pg-tls-cert", certFile}); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("--pg-tls-cert alone: %v", err)
	}
	const token = "serve-t0ken"
	t.Setenv(tokenEnv, token)
	pgPort, _ := pgtest.FreePort()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--lake", filepath.Join(dir, "lake"), "--kpis", "", "--checks", "", "--addr", "127.0.0.1:0",
			"--pg-addr", fmt.Sprintf("127.0.0.1:%d", pgPort), "--pg-tls-cert", certFile, "--pg-tls-key", keyFile})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	url := fmt.Sprintf("postgres://analyst:%s@127.0.0.1:%d/lake?connect_timeout=5&sslrootcert=%s&sslmode=", token, pgPort, certFile)
	var conn *pgx.Conn
	var err error
	for i := 0; i < 200; i++ { // the server may still be starting
		if conn, err = pgx.Connect(ctx, url+"verify-full"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgx sslmode=verify-full: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Errorf("over TLS: %d, %v", n, err)
	}
	if _, err := pgx.Connect(ctx, url+"disable"); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Errorf("sslmode=disable: %v", err)
	}
}
