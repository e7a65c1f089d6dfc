package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Versity starts the versitygw binary named by CDCLAKE_VERSITYGW with its
// posix backend on a temporary folder, listening on a free port of
// 127.0.0.1 with generated root credentials, waits until it answers and
// stops it at t.Cleanup. It skips the test when CDCLAKE_VERSITYGW is unset.
func Versity(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvVersity)
	if bin == "" {
		t.Skipf("versitygw tests skipped: set %s to the path of the versitygw binary (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)", EnvVersity)
	}
	var lastErr error
	for range 3 { // a free port can be taken before the server binds it
		srv, err := startVersity(t, bin)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return nil
}

func startVersity(t testing.TB, bin string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	srv := &Server{
		Name:         "versitygw",
		Endpoint:     "http://" + addr,
		AccessKey:    "VGW" + randomHex(8),
		SecretKey:    randomHex(20),
		Region:       "us-east-1",
		EnforcesAuth: true,
	}
	const health = "/_cdclake_health"
	cmd := exec.Command(bin,
		"--port", addr,
		"--region", srv.Region,
		"--health", health,
		"--quiet",
		"posix", dir)
	// Credentials go through the environment, not argv (visible in ps).
	cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY_ID="+srv.AccessKey,
		"ROOT_SECRET_ACCESS_KEY="+srv.SecretKey,
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("versitygw exited early (%v): %s", err, out.String())
		default:
		}
		if ping(srv.Endpoint + health) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw did not answer on %s within 20s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(stop)
	return srv, nil
}

func ping(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
