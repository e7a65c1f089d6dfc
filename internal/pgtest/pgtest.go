// Package pgtest starts throwaway PostgreSQL clusters for tests.
//
// A cluster is a fresh data directory copied from a template that initdb
// builds once per machine (cached in the temp dir), started with
// wal_level=logical on a free port of 127.0.0.1. Tests that run as root
// run the server as the "postgres" user (or "nobody"). The superuser is
// "postgres" and connects without a password over TCP; other roles use
// scram-sha-256 passwords so authentication failures can be tested.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir returns the directory holding the PostgreSQL server binaries:
// $CDCLAKE_PG_BIN, else the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv("CDCLAKE_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found (install postgresql-15 or set CDCLAKE_PG_BIN)")
}

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	Dir  string // data directory
	Port int
	bin  string
	cred *syscall.Credential
}

// Options adjust a cluster. The zero value is the default.
type Options struct {
	// Settings are extra postgresql.conf settings (name -> value).
	Settings map[string]string
}

// Start starts a cluster that stops when the test ends.
func Start(t testing.TB, opts ...Options) *Cluster {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c, err := New(t.TempDir(), o)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// New creates and starts a cluster in a subfolder of dir; the caller stops it.
func New(dir string, o Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	tmpl, err := template(bin, cred)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		// the server user must be able to reach the data dir
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(d, st.Mode().Perm()|0o011)
			}
		}
	}
	c := &Cluster{Dir: filepath.Join(dir, "pgdata"), bin: bin, cred: cred}
	if out, err := exec.Command("cp", "-a", tmpl, c.Dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy template cluster: %v: %s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	c.Port = port
	conf := map[string]string{
		"port":                    strconv.Itoa(port),
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "'" + c.Dir + "'",
	}
	for k, v := range o.Settings {
		conf[k] = v
	}
	if err := appendConf(c.Dir, conf); err != nil {
		return nil, err
	}
	if err := c.Restart(); err != nil {
		return nil, err
	}
	return c, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns a connection URL for database db as user postgres.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// UserURL returns a connection URL for database db as user with password.
func (c *Cluster) UserURL(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, password, c.Port, db)
}

// CreateDB creates database name and returns its URL.
func (c *Cluster) CreateDB(t testing.TB, name string) string {
	t.Helper()
	c.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return c.URL(name)
}

// Exec runs SQL statements in database db as the superuser, failing the test on error.
func (c *Cluster) Exec(t testing.TB, db string, sql ...string) {
	t.Helper()
	if err := c.ExecErr(db, sql...); err != nil {
		t.Fatal(err)
	}
}

// ExecErr runs SQL statements in database db as the superuser.
func (c *Cluster) ExecErr(db string, sql ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("exec %q: %w", s, err)
		}
	}
	return nil
}

// Gate holds advisory lock key in a session of its own until open is
// called (or the test ends): SQL that takes pg_advisory_xact_lock_shared(key)
// waits until then, a row-level security policy holding a copy in the
// middle, for example.
func (c *Cluster) Gate(t testing.TB, db string, key int64) (open func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Stop stops the server immediately; Restart starts it again.
func (c *Cluster) Stop() {
	_ = c.pgctl("stop", "-m", "immediate", "-w").Run()
}

// Restart (re)starts a stopped server and waits until it accepts connections.
func (c *Cluster) Restart() error {
	cmd := c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.Dir, "server.log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, tail(string(log), 2000))
	}
	return nil
}

// Log returns the server log.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
	return string(b)
}

func (c *Cluster) pgctl(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", c.Dir}, args...)...)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// serverUser returns the credential to run the server with: nil when not
// root, else the postgres user (or nobody), since PostgreSQL refuses root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and no postgres or nobody user to run the server as")
}

var tmplMu sync.Mutex

// template returns a data directory built by initdb once per machine.
func template(bin string, cred *syscall.Credential) (string, error) {
	tmplMu.Lock()
	defer tmplMu.Unlock()
	ver, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	uid := os.Geteuid()
	if cred != nil {
		uid = int(cred.Uid)
	}
	key := strings.Join(strings.Fields(string(ver)), "_")
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("cdclake-pgtest-%s-u%d-v1", key, uid))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	// build under a temporary name, publish with one rename; a file lock
	// keeps parallel test binaries from racing.
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", tmp, "-U", "postgres", "-E", "UTF8",
		"--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, out)
	}
	hba := "local all all trust\n" +
		"host all postgres 127.0.0.1/32 trust\n" +
		"host replication postgres 127.0.0.1/32 trust\n" +
		"host all all 127.0.0.1/32 scram-sha-256\n" +
		"host replication all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(tmp, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return "", err
	}
	base := map[string]string{
		"wal_level":             "logical",
		"max_replication_slots": "20",
		"max_wal_senders":       "20",
		"max_connections":       "60",
		"fsync":                 "off",
		"full_page_writes":      "off",
		"shared_buffers":        "64MB",
		"log_min_messages":      "warning",
		"timezone":              "'UTC'",
	}
	if err := appendConf(tmp, base); err != nil {
		return "", err
	}
	if cred != nil {
		if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", cred.Uid, cred.Gid), tmp).CombinedOutput(); err != nil {
			return "", fmt.Errorf("chown template: %v: %s", err, out)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("publish template: %w", err)
	}
	return dir, nil
}

func appendConf(dir string, kv map[string]string) error {
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	defer f.Close()
	for k, v := range kv {
		if _, err := fmt.Fprintf(f, "%s = %s\n", k, v); err != nil {
			return err
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// QueryRow runs a one-row query in database db as the superuser and scans
// the row into dest.
func (c *Cluster) QueryRow(db, sql string, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return fmt.Errorf("connect %s: %w", db, err)
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest...)
}
