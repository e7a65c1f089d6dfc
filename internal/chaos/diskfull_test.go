package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdclake/cdclake/lakeformat"
)

// spillDir returns a folder with about 2 MB of space: a tmpfs of 2m when
// mount is permitted (tests run as root), else a folder whose space is
// "used up" by making it unwritable. A filler file takes most of the
// tmpfs; free releases it.
func spillDir(t *testing.T) (dir string, free func(), how string) {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "spill")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput()
	if err != nil {
		// fallback: a folder ingest cannot write to fails its spill writes
		// the way a full disk does (an error from the write), so the same
		// promises can be checked
		t.Logf("mount tmpfs not permitted (%v: %s): the spill folder is made unwritable instead", err, strings.TrimSpace(string(out)))
		if err := os.Chmod(mnt, 0o500); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(mnt, "sub"), func() { os.Chmod(mnt, 0o755) }, "unwritable folder"
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	// a filler leaves about 64 KiB free
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(mnt, "spill"), func() { os.Remove(filler) }, "tmpfs of 2 MiB"
}

// TestChaosSpillDiskFull streams a transaction too large for the memory
// budget while the spill folder's disk is full: ingest must stop with an
// error and acknowledge nothing past the transaction, fail the same way
// while the disk stays full, and bring the transaction in exactly once
// when space returns.
func TestChaosSpillDiskFull(t *testing.T) {
	src := startSource(t, "spill", map[string]string{"logical_decoding_work_mem": "64kB"})
	tables := []string{"items"}
	wl := &Workload{URL: src.admin, Tables: tables, InitialRows: 3000}
	ctx := context.Background()
	if err := wl.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	src.publish(t, tables...)
	dir, free, how := spillDir(t)
	lake := filepath.Join(t.TempDir(), "lake")
	env := childEnv(t, nil, "")
	args := []string{"ingest", "--source", src.url, "--lake", lake, "--catch-up", "--memory-budget", "262144", "--spill-dir", dir}
	if code, out := runOnce(t, "spill", env, 2*time.Minute, args...); code != 0 {
		t.Fatalf("first catch-up exited %d: %s", code, lastError(out))
	}

	// a small transaction, then one of ~1.5 MB that PostgreSQL streams
	// while it runs (over logical_decoding_work_mem) and ingest must spill
	conn := src.conn(t)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("UPDATE items SET ver = ver + 1, pad = 'small' WHERE id = 1")
	exec("BEGIN")
	exec("UPDATE items SET ver = ver + 1, pad = repeat(md5(id::text), 16) WHERE id > 1")
	var before string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&before); err != nil {
		t.Fatal(err)
	}
	exec("COMMIT")
	beforeLSN, err := parseLSN(before)
	if err != nil {
		t.Fatal(err)
	}
	cat := openCatalog(t, filepath.Join(lake, "catalog.db"), "file://"+lake, nil)
	for i := range 2 { // the disk stays full: the same failure again
		code, out := runOnce(t, "spill", env, 2*time.Minute, args...)
		msg := lastError(out)
		if code != 1 || !strings.Contains(msg, "no space left on device") && !strings.Contains(msg, "permission denied") {
			t.Fatalf("run %d with the spill disk full (%s): exit %d, %q; want exit 1 and a no-space error", i+1, how, code, msg)
		}
		t.Logf("run %d: %s", i+1, msg)
		confirmed, _, err := src.slot("cdclake_spill")
		if err != nil {
			t.Fatal(err)
		}
		if confirmed > beforeLSN {
			t.Fatalf("slot acknowledged to %X, past the unspilled transaction (its commit is after %s)", confirmed, before)
		}
		if rec, err := cat.Source(ctx, "spill"); err != nil || rec.LSN > beforeLSN {
			t.Fatalf("watermark %X (err %v) past the unspilled transaction", rec.LSN, err)
		}
	}
	free()
	if code, out := runOnce(t, "spill", env, 2*time.Minute, args...); code != 0 {
		t.Fatalf("with space back: exit %d: %s", code, lastError(out))
	}
	rep, err := CheckState(ctx, cat, conn, "spill", tables)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Error(err)
	}
	rows, err := ReadChangelog(ctx, cat, "spill", "items")
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, r := range rows {
		if r.Op == lakeformat.OpUpdate {
			updates++
		}
	}
	if updates != 3000 {
		t.Errorf("%d updates in the changelog, want 3000: the small one and 2999 of the big transaction, once", updates)
	}
}
