package pgwire

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdclake/cdclake/internal/testcert"
)

// TestTLS connects psql and pgx with sslmode=verify-full to a server with
// a certificate, checks that a client without TLS is refused there, and
// that sslmode=require fails on a server without one.
func TestTLS(t *testing.T) {
	_, e := lakeEngine(t)
	cfg, caFile := selfSigned(t)
	port := startServer(t, e, Options{Password: token, TLS: cfg})
	conninfo := func(mode string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=analyst dbname=lake sslmode=%s sslrootcert=%s", port, mode, caFile)
	}
	psqlConn := func(conninfo string, args ...string) (string, error) {
		cmd := exec.Command(psqlPath(t), append([]string{"--no-psqlrc", conninfo}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+token, "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := psqlConn(conninfo("verify-full"), "-At", "-c", `SELECT count(*) FROM public.customers`)
	if err != nil || out != "20\n" {
		t.Errorf("psql sslmode=verify-full: %v: %q", err, out)
	}
	out, err = psqlConn(conninfo("verify-full"), "-c", `\conninfo`)
	if err != nil || !strings.Contains(out, "SSL connection") {
		t.Errorf("psql \\conninfo: %v: %q", err, out)
	}
	out, err = psqlConn(conninfo("disable"), "-c", `SELECT 1`)
	if err == nil || !strings.Contains(out, "requires TLS") {
		t.Errorf("psql sslmode=disable on a TLS server: %v: %q", err, out)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://analyst:%s@127.0.0.1:%d/lake?sslmode=verify-full&sslrootcert=%s", token, port, caFile))
	if err != nil {
		t.Fatalf("pgx sslmode=verify-full: %v", err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.orders WHERE id > $1`, int64(0)).Scan(&n); err != nil || n == 0 {
		t.Errorf("pgx over TLS: %d, %v", n, err)
	}
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Errorf("pgx connection is %T, not TLS", conn.PgConn().Conn())
	}

	// without a certificate, TLS is refused
	plain := startServer(t, e, Options{Password: token})
	out, err = psqlConn(fmt.Sprintf("host=127.0.0.1 port=%d user=analyst dbname=lake sslmode=require", plain), "-c", `SELECT 1`)
	if err == nil || !strings.Contains(out, "does not support SSL") {
		t.Errorf("psql sslmode=require without a certificate: %v: %q", err, out)
	}
}

// selfSigned returns a server TLS configuration with a self-signed
// certificate for 127.0.0.1 and the path of that certificate in PEM.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile)
	cfg, err := LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, certFile
}
