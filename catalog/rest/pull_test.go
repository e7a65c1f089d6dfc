package rest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// pullScript extracts the pull script from docs/warehouse-pull.md.
func pullScript(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/warehouse-pull.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- pull-script")
	if !ok {
		t.Fatal("no pull-script marker in docs/warehouse-pull.md")
	}
	_, rest, _ = strings.Cut(rest, "```bash\n")
	script, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("pull script block not closed")
	}
	path := filepath.Join(t.TempDir(), "cdclake-pull")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPullScript runs the documented nightly pull script against the
// server: nothing while partitions are open, every closed partition once,
// nothing on a second run, and a compacted partition again, with the
// replaced files removed.
func TestPullScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	f := shopLake(t)
	clk := &clock{}
	ts := f.server(t, Options{Token: testToken, Now: clk.Now,
		SourceStatus: func(ctx context.Context, s catalog.Source) (SourceStatus, error) {
			return SourceStatus{CaughtUpAt: clk.Now()}, nil
		}})
	script := pullScript(t)
	dest := t.TempDir()
	run := func(token string) (string, error) {
		cmd := exec.Command("bash", script, dest)
		cmd.Env = append(os.Environ(), "CDCLAKE_URL="+ts.URL, "CDCLAKE_TOKEN="+token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustRun := func() string {
		t.Helper()
		out, err := run(testToken)
		if err != nil {
			t.Fatalf("pull script: %v\n%s", err, out)
		}
		return out
	}
	var parts struct{ Partitions []Partition }
	get(t, ts, testToken, "/v1/tables/shop/public/orders/partitions", http.StatusOK, &parts)
	first, latest := parts.Partitions[0], parts.Partitions[len(parts.Partitions)-1]

	clk.Set(first.Hour.Add(time.Minute)) // every partition open
	if out := mustRun(); strings.Contains(out, "pulled") {
		t.Fatalf("pulled open partitions:\n%s", out)
	}

	clk.Set(latest.End.Add(time.Hour)) // every partition closed
	out := mustRun()
	manifests := checkPulled(t, ts, dest)
	if got := strings.Count(out, "pulled "); got != len(manifests) || got < 2 {
		t.Errorf("pulled %d partitions of %d:\n%s", got, len(manifests), out)
	}
	if out := mustRun(); strings.Contains(out, "pulled") {
		t.Errorf("second run pulled again:\n%s", out)
	}

	// compaction rewrites the latest hour into one file: a new version
	var before Manifest
	get(t, ts, testToken, latest.Manifest, http.StatusOK, &before)
	compactHour(t, f, lakeformat.ChangelogIdent("shop", "public", "orders"), latest.Hour)
	var after Manifest
	get(t, ts, testToken, latest.Manifest, http.StatusOK, &after)
	if after.Version <= before.Version || after.Rows != before.Rows || len(after.Files) != 1 {
		t.Fatalf("after compaction: version %d (was %d), %d rows (was %d), %d files", after.Version, before.Version, after.Rows, before.Rows, len(after.Files))
	}
	out = mustRun()
	if strings.Count(out, "pulled ") != 1 || !strings.Contains(out, latest.Manifest) {
		t.Errorf("after compaction:\n%s", out)
	}
	checkPulled(t, ts, dest)
	for _, fl := range before.Files {
		if _, err := os.Stat(filepath.Join(dest, *fl.Key)); !os.IsNotExist(err) {
			t.Errorf("replaced file %s still in the destination (%v)", *fl.Key, err)
		}
	}

	if out, err := run("wrong"); err == nil {
		t.Errorf("pull with a wrong token succeeded:\n%s", out)
	}
}

// checkPulled checks that dest holds exactly the files of every closed
// partition of every table, with the right content, and returns their
// manifests.
func checkPulled(t *testing.T, ts *httptest.Server, dest string) []Manifest {
	t.Helper()
	var tables struct{ Tables []Table }
	get(t, ts, testToken, "/v1/tables", http.StatusOK, &tables)
	var parts []Partition
	for _, tb := range tables.Tables {
		var ps struct{ Partitions []Partition }
		get(t, ts, testToken, tb.Path+"/partitions?closed=true", http.StatusOK, &ps)
		parts = append(parts, ps.Partitions...)
	}
	var out []Manifest
	want := map[string]bool{}
	for _, p := range parts {
		var m Manifest
		get(t, ts, testToken, p.Manifest, http.StatusOK, &m)
		for _, fl := range m.Files {
			want[*fl.Key] = true
			data, err := os.ReadFile(filepath.Join(dest, *fl.Key))
			if err != nil {
				t.Errorf("not pulled: %v", err)
				continue
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != *fl.Checksum {
				t.Errorf("%s: wrong content", *fl.Key)
			}
		}
		out = append(out, m)
	}
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, ".cdclake-pulled") {
			if rel, _ := filepath.Rel(dest, p); !want[filepath.ToSlash(rel)] {
				t.Errorf("unexpected file %s in the destination", rel)
			}
		}
		return nil
	})
	return out
}

// compactHour rewrites one hour of a changelog into new files holding the
// same rows, as compaction does.
func compactHour(t *testing.T, f *lakeFixture, id table.Identifier, hour time.Time) {
	t.Helper()
	ctx := context.Background()
	tbl, err := f.cat.Iceberg().LoadTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ts := iceberg.Reference(lakeformat.ColCommitTS)
	filter := iceberg.NewAnd(iceberg.GreaterThanEqual(ts, iceberg.Timestamp(hour.UnixMicro())),
		iceberg.LessThan(ts, iceberg.Timestamp(hour.Add(time.Hour).UnixMicro())))
	at, err := tbl.Scan(table.WithRowFilter(filter)).ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	if _, err := tbl.OverwriteTable(ctx, at, at.NumRows(), nil, table.WithOverwriteFilter(filter)); err != nil {
		t.Fatal(err)
	}
}
