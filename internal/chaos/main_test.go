package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/internal/pgtest"
	"github.com/cdclake/cdclake/internal/s3test"
)

// pgPassword is the password of the role cdclake connects as; no log line
// or error of the suite may show it (TestChaosSecretsNotLogged).
const pgPassword = "chaos-PG-pw-7f3e91d0c4"

var (
	suiteLog *Recorder
	scale    = 1    // CDCLAKE_CHAOS_SCALE
	results  tally  // counts for the final line
	workDir  string // binary and suite log
)

func TestMain(m *testing.M) {
	if s, err := strconv.Atoi(os.Getenv("CDCLAKE_CHAOS_SCALE")); err == nil && s > 0 {
		scale = s
	}
	var err error
	if workDir, err = os.MkdirTemp("", "cdclake-chaos-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if suiteLog, err = NewRecorder(filepath.Join(workDir, "suite.log")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	suiteLog.Secret(pgPassword)
	code := m.Run()
	if line := results.line(); line != "" {
		fmt.Println(line)
	}
	suiteLog.Close()
	if code == 0 && os.Getenv("CDCLAKE_CHAOS_KEEP") == "" {
		os.RemoveAll(workDir)
	} else {
		fmt.Printf("chaos: suite log kept in %s\n", suiteLog.Path())
	}
	os.Exit(code)
}

// tally collects the counts the suite prints in its final line.
type tally struct {
	mu     sync.Mutex
	faults map[string]int
	counts map[string]int
}

func (t *tally) fault(kind string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.faults == nil {
		t.faults = map[string]int{}
	}
	t.faults[kind] += n
}

func (t *tally) add(name string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[name] += n
}

func (t *tally) line() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.faults) == 0 && len(t.counts) == 0 {
		return ""
	}
	total := 0
	var kinds []string
	for k, v := range t.faults {
		total += v
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	c := t.counts
	return fmt.Sprintf("chaos: scale=%d faults=%d (%s) transactions=%d changes_checked=%d rows_checked=%d compacted_rows_checked=%d changelog_rows=%d rows_lost=%d duplicates=%d repeated_rows=%d phantoms=%d secrets_found=%d",
		scale, total, strings.Join(kinds, " "), c["transactions"], c["changes"], c["rows"], c["compacted_rows"], c["changelog_rows"],
		c["lost"], c["duplicates"], c["repeated"], c["phantoms"], c["secrets"])
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cdclakeBin builds the cdclake binary once per run of the suite, or
// returns the one CDCLAKE_CHAOS_BIN names.
func cdclakeBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("CDCLAKE_CHAOS_BIN"); p != "" {
			binPath = p
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(workDir, "cdclake")
		out, err := exec.Command(goBin, "build", "-tags", "duckdb_arrow", "-o", binPath, "github.com/cdclake/cdclake/cmd/cdclake").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -tags duckdb_arrow ./cmd/cdclake: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// source is a throwaway PostgreSQL database with a role "chaos" that has
// a password and REPLICATION: cdclake connects as it, the workload and
// the checks as the superuser.
type source struct {
	pg    *pgtest.Cluster
	db    string
	url   string // as chaos, password included
	admin string // as postgres
}

func startSource(t *testing.T, db string, settings map[string]string) *source {
	t.Helper()
	pg := pgtest.Start(t, pgtest.Options{Settings: settings})
	s := &source{pg: pg, db: db, admin: pg.CreateDB(t, db), url: pg.UserURL("chaos", pgPassword, db)}
	pg.Exec(t, db, "CREATE ROLE chaos LOGIN REPLICATION PASSWORD '"+pgPassword+"'")
	return s
}

// publish creates cdclake's publication for tables as the superuser (a
// publication FOR ALL TABLES needs one) and lets chaos read them.
func (s *source) publish(t *testing.T, tables ...string) {
	t.Helper()
	s.pg.Exec(t, s.db,
		fmt.Sprintf("CREATE PUBLICATION cdclake_%s FOR TABLE %s WITH (publish_via_partition_root = true)", s.db, strings.Join(tables, ", ")),
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO chaos")
}

// conn opens a superuser connection closed at the end of the test.
func (s *source) conn(t *testing.T) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), s.admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// slot returns the slot's confirmed flush LSN and wal_status ("" and 0
// when it does not exist).
func (s *source) slot(name string) (lsn uint64, status string, err error) {
	var confirmed, st *string
	err = s.pg.QueryRow(s.db, fmt.Sprintf(`SELECT
		(SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '%[1]s'),
		(SELECT wal_status FROM pg_replication_slots WHERE slot_name = '%[1]s')`, name), &confirmed, &st)
	if err != nil || confirmed == nil {
		return 0, "", err
	}
	lsn, err = parseLSN(*confirmed)
	if st != nil {
		status = *st
	}
	return lsn, status, err
}

func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	return h<<32 | l, nil
}

// s3Server starts versitygw when CDCLAKE_VERSITYGW names it, else
// gofakes3, with bucket "lake". Its secret joins the ones the logs must
// not show.
func s3Server(t *testing.T) *s3test.Server {
	t.Helper()
	var srv *s3test.Server
	if os.Getenv(s3test.EnvVersity) != "" {
		srv = s3test.Versity(t)
	} else {
		srv = s3test.Fake(t)
	}
	srv.CreateBucket(t, "lake")
	suiteLog.Secret(srv.SecretKey)
	return srv
}

// startProxy starts a fault-injecting proxy in front of srv.
func startProxy(t *testing.T, srv *s3test.Server, seed uint64) *Proxy {
	t.Helper()
	p, err := NewProxy(srv.Endpoint, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// childEnv is the whole environment of a cdclake process: the S3
// server's credentials through the standard AWS variables, its endpoint
// (or the proxy's), debug logs, and nothing from the host's AWS setup.
func childEnv(t *testing.T, srv *s3test.Server, endpoint string, extra ...string) []string {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "aws-empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"TMPDIR=" + t.TempDir(),
		"CDCLAKE_LOG_LEVEL=debug",
	}
	if srv != nil {
		env = append(env,
			"AWS_ACCESS_KEY_ID="+srv.AccessKey,
			"AWS_SECRET_ACCESS_KEY="+srv.SecretKey,
			"AWS_REGION="+srv.Region,
			"AWS_ENDPOINT_URL_S3="+endpoint,
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE="+empty,
			"AWS_SHARED_CREDENTIALS_FILE="+empty)
	}
	return append(env, extra...)
}

// openCatalog opens the catalog a cdclake process writes, reading the
// lake's files straight from the S3 server (not through the proxy).
func openCatalog(t *testing.T, path, warehouse string, srv *s3test.Server) *catalog.Catalog {
	t.Helper()
	props := map[string]string{}
	if srv != nil {
		props = map[string]string{"s3.endpoint": srv.Endpoint, "s3.region": srv.Region,
			"s3.access-key-id": srv.AccessKey, "s3.secret-access-key": srv.SecretKey}
	}
	cat, err := catalog.Open(context.Background(), catalog.Options{URL: path, Warehouse: warehouse, Props: props})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// runOnce runs the binary to its end and returns its exit code and
// output, recording the output in the suite log.
func runOnce(t *testing.T, name string, env []string, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cdclakeBin(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	suiteLog.Text(name, string(out))
	if ctx.Err() != nil {
		t.Fatalf("%s: cdclake %s did not end within %s:\n%s", name, strings.Join(redactArgs(args), " "), timeout, tail(string(out), 3000))
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// redactArgs hides the password in arguments shown in a failure.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, pgPassword, "xxxxx")
	}
	return out
}

// lastError returns the "cdclake: ..." line of a process's output.
func lastError(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if e, ok := strings.CutPrefix(lines[i], "cdclake: "); ok {
			return e
		}
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// seed returns the run's random seed: CDCLAKE_CHAOS_SEED or the clock,
// logged so a failing run can be repeated (the timing of faults still
// varies).
func seed(t *testing.T) uint64 {
	if s, err := strconv.ParseUint(os.Getenv("CDCLAKE_CHAOS_SEED"), 10, 64); err == nil {
		t.Logf("seed %d (CDCLAKE_CHAOS_SEED)", s)
		return s
	}
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d (set CDCLAKE_CHAOS_SEED to repeat)", s)
	return s
}

// catalogDB opens a catalog's SQLite file directly, as an operator would
// with the sqlite3 shell.
func catalogDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// proc is one cdclake process the test starts and stops itself.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int
	mu   sync.Mutex
	out  strings.Builder
}

// startProc starts the binary; every line it prints goes to the suite
// log and to onLine (when set).
func startProc(t *testing.T, name string, env []string, onLine func(string), args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(cdclakeBin(t), args...), done: make(chan struct{})}
	p.cmd.Env = env
	waited, err := startLogged(p.cmd, suiteLog, name, func(line string) {
		p.mu.Lock()
		p.out.WriteString(line + "\n")
		p.mu.Unlock()
		if onLine != nil {
			onLine(line)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if ee, ok := (<-waited).(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// stop sends SIGTERM and waits for the exit code.
func (p *proc) stop() int {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	return p.code
}

// exited reports whether the process ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitSlot waits up to 60 s for a replication slot to exist.
func waitSlot(t *testing.T, src *source, slot string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if lsn, _, err := src.slot(slot); err == nil && lsn > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replication slot %s after 60 s", slot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
