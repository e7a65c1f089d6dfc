package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/pgtest"
)

// TestServeTLS runs cdclake serve with --pg-tls-cert and --pg-tls-key: pgx
// connects with sslmode=verify-full, a client without TLS is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
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

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cdclake test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
