package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdclake/cdclake/ingest"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// errorLines returns the errors joined in err, one per element, and fails
// the test when one of them spans several lines.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var joined interface{ Unwrap() []error }
	list := []error{err}
	if errors.As(err, &joined) {
		list = joined.Unwrap()
	}
	var lines []string
	for _, e := range list {
		if strings.Contains(e.Error(), "\n") {
			t.Errorf("error on several lines: %q", e.Error())
		}
		lines = append(lines, e.Error())
	}
	return lines
}

const minimal = `
sources:
  - name: orders
    url: postgres://cdc@orders-db:5432/orders
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Lake:    "./lake",
		Sources: []Source{{Name: "orders", URL: "postgres://cdc@orders-db:5432/orders"}},
		Compaction: Compaction{
			Interval:           5 * time.Minute,
			SnapshotRetention:  168 * time.Hour,
			ChangelogRetention: 15 * time.Minute,
			OrphanAge:          24 * time.Hour,
		},
		Serve:  Serve{Addr: "127.0.0.1:8080", PGAddr: "127.0.0.1:5433"},
		KPIs:   KPIs{Dir: "./kpis"},
		Checks: Checks{Dir: "./checks"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseEveryKey(t *testing.T) {
	data := `
lake: s3://bucket/prefix
catalog: postgres://lake:${CATALOG_PW}@catalog-db/lake
sources:
  - name: orders_2
    url: postgres://cdc:${PW}@orders-db:5432/orders?sslmode=require
    publication: orders_pub
    slot: orders_slot
    tables: [public.orders, order_lines]
    snapshot: never
    snapshot-workers: 3
    flush-interval: 250ms
    flush-rows: 1000
    flush-bytes: 1 KiB
    memory-budget: 2GB
    spill-dir: /var/spill
compaction:
  interval: 0
  snapshot-retention: 1h
  changelog-retention: 1m
  orphan-age: 48h
serve:
  addr: ""
  pg-addr: :5432
  pg-tls-cert: /etc/cdclake/cert.pem
  pg-tls-key: /etc/cdclake/key.pem
kpis:
  dir: /etc/kpis
checks:
  dir: checks.d
`
	c, err := Parse([]byte(data), env(map[string]string{"PW": "pw", "CATALOG_PW": "cpw"}))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Lake:    "s3://bucket/prefix",
		Catalog: "postgres://lake:cpw@catalog-db/lake",
		Sources: []Source{{
			Name:            "orders_2",
			URL:             "postgres://cdc:pw@orders-db:5432/orders?sslmode=require",
			Publication:     "orders_pub",
			Slot:            "orders_slot",
			Tables:          []string{"public.orders", "order_lines"},
			Snapshot:        "never",
			SnapshotWorkers: 3,
			FlushInterval:   250 * time.Millisecond,
			FlushRows:       1000,
			FlushBytes:      1024,
			MemoryBudget:    2_000_000_000,
			SpillDir:        "/var/spill",
		}},
		Compaction: Compaction{
			Interval:           0, // given: disabled
			SnapshotRetention:  time.Hour,
			ChangelogRetention: time.Minute,
			OrphanAge:          48 * time.Hour,
		},
		Serve:  Serve{Addr: "", PGAddr: ":5432", PGTLSCert: "/etc/cdclake/cert.pem", PGTLSKey: "/etc/cdclake/key.pem"},
		KPIs:   KPIs{Dir: "/etc/kpis"},
		Checks: Checks{Dir: "checks.d"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseDisabling(t *testing.T) {
	tests := []struct {
		name, data   string
		interval     time.Duration
		addr, pgAddr string
	}{
		{"left out", "", 5 * time.Minute, "127.0.0.1:8080", "127.0.0.1:5433"},
		{"no value", "compaction:\n  interval:\nserve:\n  addr:\n  pg-addr: ~\n", 5 * time.Minute, "127.0.0.1:8080", "127.0.0.1:5433"},
		{"zero and empty", "compaction:\n  interval: 0\nserve:\n  addr: \"\"\n  pg-addr: ''\n", 0, "", ""},
		{"empty from a default", "compaction:\n  interval: ${X:-0s}\nserve:\n  addr: ${X:-}\n", 0, "", "127.0.0.1:5433"},
		{"set", "compaction:\n  interval: 1m\nserve:\n  addr: :80\n  pg-addr: '[::1]:5432'\n", time.Minute, ":80", "[::1]:5432"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+tt.data), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if c.Compaction.Interval != tt.interval || c.Serve.Addr != tt.addr || c.Serve.PGAddr != tt.pgAddr {
				t.Errorf("got %v %q %q", c.Compaction.Interval, c.Serve.Addr, c.Serve.PGAddr)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name, value string
		get         func(Source) any
		want        any
	}{
		{"size plain", "flush-bytes: 1048576", func(s Source) any { return s.FlushBytes }, int64(1 << 20)},
		{"size B", "flush-bytes: 10B", func(s Source) any { return s.FlushBytes }, int64(10)},
		{"size KiB", "flush-bytes: 3KiB", func(s Source) any { return s.FlushBytes }, int64(3 << 10)},
		{"size MiB", "flush-bytes: 64MiB", func(s Source) any { return s.FlushBytes }, int64(64 << 20)},
		{"size GiB", "memory-budget: 1GiB", func(s Source) any { return s.MemoryBudget }, int64(1 << 30)},
		{"size KB", "flush-bytes: 3KB", func(s Source) any { return s.FlushBytes }, int64(3000)},
		{"size MB", "flush-bytes: 5 MB", func(s Source) any { return s.FlushBytes }, int64(5_000_000)},
		{"size GB", "memory-budget: 2gb", func(s Source) any { return s.MemoryBudget }, int64(2_000_000_000)},
		{"size zero is the default", "flush-bytes: 0", func(s Source) any { return s.FlushBytes }, int64(0)},
		{"duration", "flush-interval: 1h30m", func(s Source) any { return s.FlushInterval }, 90 * time.Minute},
		{"duration zero", "flush-interval: 0", func(s Source) any { return s.FlushInterval }, time.Duration(0)},
		{"null is the default", "flush-interval:", func(s Source) any { return s.FlushInterval }, time.Duration(0)},
		{"count", "flush-rows: 5000", func(s Source) any { return s.FlushRows }, 5000},
		{"tables block list", "tables:\n      - a.b\n      - c", func(s Source) any { return s.Tables }, []string{"a.b", "c"}},
		{"tables empty", "tables: []", func(s Source) any { return s.Tables }, []string(nil)},
		{"snapshot initial", "snapshot: initial", func(s Source) any { return s.Snapshot }, "initial"},
		{"quoted name", `publication: "my pub"`, func(s Source) any { return s.Publication }, "my pub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := minimal + "    " + tt.value + "\n"
			c, err := Parse([]byte(data), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(c.Sources[0]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		env  map[string]string
		want []string // every error line, in order
	}{
		{
			name: "unknown top-level key",
			data: "lakes: ./l\n" + minimal,
			want: []string{`lakes: unknown key, did you mean "lake"? (line 1)`},
		},
		{
			name: "unknown source key, snake case",
			data: minimal + "    flush_interval: 1s\n",
			want: []string{`sources[0].flush_interval: unknown key, did you mean "flush-interval"? (line 5)`},
		},
		{
			name: "unknown key, part of a known one",
			data: minimal + "compaction:\n  retention: 1h\n",
			want: []string{`compaction.retention: unknown key, did you mean "snapshot-retention"? (line 6)`},
		},
		{
			name: "unknown key, nothing close",
			data: minimal + "serve:\n  colour: blue\n",
			want: []string{`serve.colour: unknown key (known keys: addr, pg-addr, pg-tls-cert, pg-tls-key) (line 6)`},
		},
		{
			name: "a TLS certificate without its key",
			data: minimal + "serve:\n  pg-tls-cert: cert.pem\n",
			want: []string{`serve.pg-tls-cert: needs serve.pg-tls-key (line 6)`},
		},
		{
			name: "unknown key with odd characters stays on one line",
			data: minimal + "\"a\\nb\": 1\n",
			want: []string{`"a\nb": unknown key (known keys: lake, catalog, sources, compaction, serve, kpis, checks) (line 5)`},
		},
		{
			name: "key given twice",
			data: minimal + "    flush-rows: 1\n    flush-rows: 2\n",
			want: []string{`sources[0].flush-rows: key given twice (first on line 5) (line 6)`},
		},
		{
			name: "bad duration",
			data: minimal + "    flush-interval: fast\n",
			want: []string{`sources[0].flush-interval: "fast" is not a duration (use a number with a unit: ms, s, m or h, as in 500ms, 1s, 5m, 168h) (line 5)`},
		},
		{
			name: "days",
			data: minimal + "compaction:\n  snapshot-retention: 7d\n",
			want: []string{`compaction.snapshot-retention: "7d" is not a duration (days are written in hours, as in 168h for 7 days) (line 6)`},
		},
		{
			name: "negative duration",
			data: minimal + "compaction:\n  orphan-age: -1h\n",
			want: []string{`compaction.orphan-age: "-1h" must not be negative (line 6)`},
		},
		{
			name: "bad size unit",
			data: minimal + "    flush-bytes: 64 megs\n",
			want: []string{`sources[0].flush-bytes: "64 megs" is not a size (write bytes, or a whole number with B, KiB, MiB, GiB, KB, MB or GB, as in 64MiB) (line 5)`},
		},
		{
			name: "fractional size",
			data: minimal + "    memory-budget: 1.5GiB\n",
			want: []string{`sources[0].memory-budget: "1.5GiB" is not a size (write bytes, or a whole number with B, KiB, MiB, GiB, KB, MB or GB, as in 64MiB) (line 5)`},
		},
		{
			name: "size overflow",
			data: minimal + "    memory-budget: 99999999999GiB\n",
			want: []string{`sources[0].memory-budget: "99999999999GiB" is not a size (write bytes, or a whole number with B, KiB, MiB, GiB, KB, MB or GB, as in 64MiB) (line 5)`},
		},
		{
			name: "negative count",
			data: minimal + "    snapshot-workers: -2\n",
			want: []string{`sources[0].snapshot-workers: "-2" is not a whole number, 0 or more (line 5)`},
		},
		{
			name: "bad enum",
			data: minimal + "    snapshot: sometimes\n",
			want: []string{`sources[0].snapshot: "sometimes" must be initial or never (line 5)`},
		},
		{
			name: "bad name",
			data: "sources:\n  - name: Orders-DB\n    url: postgres://h/db\n",
			want: []string{`sources[0].name: "Orders-DB" is not a source name (1 to 55 of a-z, 0-9 and _) (line 2)`},
		},
		{
			name: "name too long",
			data: "sources:\n  - name: " + strings.Repeat("a", 56) + "\n    url: postgres://h/db\n",
			want: []string{`sources[0].name: "` + strings.Repeat("a", 56) + `" is not a source name (1 to 55 of a-z, 0-9 and _) (line 2)`},
		},
		{
			name: "bad slot",
			data: minimal + "    slot: My-Slot\n",
			want: []string{`sources[0].slot: "My-Slot" is not a replication slot name (1 to 63 of a-z, 0-9 and _) (line 5)`},
		},
		{
			name: "duplicate source",
			data: minimal + "  - name: orders\n    url: postgres://h/db\n",
			want: []string{`sources[1].name: source "orders" is already defined on line 3 (names must be unique) (line 5)`},
		},
		{
			name: "name and url required",
			data: "sources:\n  - publication: p\n",
			want: []string{
				`sources[0].name: required (the source's name in the lake, as in name: orders) (line 2)`,
				`sources[0].url: required (the database's URL, as in url: postgres://cdc@orders-db:5432/orders) (line 2)`,
			},
		},
		{
			name: "empty name",
			data: "sources:\n  - name: \"\"\n    url: postgres://h/db\n",
			want: []string{`sources[0].name: must not be empty (line 2)`},
		},
		{
			name: "url without a value",
			data: "sources:\n  - name: a\n    url:\n",
			want: []string{`sources[0].url: required (the database's URL, as in url: postgres://cdc@orders-db:5432/orders) (line 2)`},
		},
		{
			name: "empty url",
			data: "sources:\n  - name: a\n    url: ${EMPTY}\n",
			env:  map[string]string{"EMPTY": ""},
			want: []string{`sources[0].url: must not be empty (line 3)`},
		},
		{
			name: "name without a value",
			data: "sources:\n  - name:\n    url: postgres://h/db\n",
			want: []string{`sources[0].name: required (the source's name in the lake, as in name: orders) (line 2)`},
		},
		{
			name: "empty source",
			data: "sources:\n  -\n",
			want: []string{
				`sources[0]: is empty (a source needs at least name and url) (line 2)`,
				`sources: at least one source is required (line 2)`,
			},
		},
		{
			name: "no sources",
			data: "lake: ./lake\n",
			want: []string{`sources: at least one source is required`},
		},
		{
			name: "empty file",
			data: "",
			want: []string{`sources: at least one source is required`},
		},
		{
			name: "sources not a list",
			data: "sources:\n  orders:\n    url: postgres://h/db\n",
			want: []string{
				`sources: must be a list of sources, each starting with "- name:", not a mapping (line 2)`,
				`sources: at least one source is required (line 2)`,
			},
		},
		{
			name: "top level not a mapping",
			data: "- a\n- b\n",
			want: []string{
				`config: must be a mapping of keys (key: value), not a list (line 1)`,
				`sources: at least one source is required`,
			},
		},
		{
			name: "list where a value goes",
			data: minimal + "    flush-interval: [1s]\n",
			want: []string{`sources[0].flush-interval: must be a single value, not a list (line 5)`},
		},
		{
			name: "url not postgres",
			data: "sources:\n  - name: a\n    url: mysql://h/db\n",
			want: []string{`sources[0].url: must be a postgres:// URL, as in postgres://user@host:5432/db (line 3)`},
		},
		{
			name: "bad catalog scheme",
			data: "catalog: mysql://h/db\n" + minimal,
			want: []string{`catalog: must be a SQLite file path or a postgres:// URL (line 1)`},
		},
		{
			name: "s3 lake without catalog",
			data: "lake: s3://bucket/p\n" + minimal,
			want: []string{`catalog: required with an s3:// lake (a SQLite file path or a postgres:// URL) (line 1)`},
		},
		{
			name: "bad lake",
			data: "lake: ftp://host/x\n" + minimal,
			want: []string{`lake: unsupported lake scheme "ftp" in "ftp://host/x" (use a folder path, file:///abs/path or s3://bucket/prefix) (line 1)`},
		},
		{
			name: "bad address",
			data: minimal + "serve:\n  addr: localhost\n",
			want: []string{`serve.addr: "localhost" is not a host:port address (as in 127.0.0.1:8080, or :8080 for all interfaces) (line 6)`},
		},
		{
			name: "same addresses",
			data: minimal + "serve:\n  addr: :8080\n  pg-addr: :8080\n",
			want: []string{`serve.pg-addr: is the same address as serve.addr (line 7)`},
		},
		{
			name: "missing variable",
			data: minimal + "    slot: ${SLOT}\n",
			want: []string{`sources[0].slot: environment variable SLOT is not set (set it, or write ${SLOT:-default}) (line 5)`},
		},
		{
			name: "lone dollar",
			data: minimal + "    spill-dir: $HOME/spill\n",
			want: []string{`sources[0].spill-dir: a "$" must start ${VAR} or be doubled as $$ (line 5)`},
		},
		{
			name: "unterminated reference",
			data: minimal + "    spill-dir: ${HOME\n",
			want: []string{`sources[0].spill-dir: unterminated ${ (write ${VAR} or ${VAR:-default}) (line 5)`},
		},
		{
			name: "bad variable name",
			data: minimal + "    spill-dir: ${1X}\n",
			want: []string{`sources[0].spill-dir: bad ${...} reference (write ${VAR} or ${VAR:-default}; a name is letters, digits and _) (line 5)`},
		},
		{
			name: "expanded value is bad",
			data: minimal + "    flush-interval: ${FLUSH}\n",
			env:  map[string]string{"FLUSH": "fast"},
			want: []string{`sources[0].flush-interval: "${FLUSH}" (expanded) is not a duration (use a number with a unit: ms, s, m or h, as in 500ms, 1s, 5m, 168h) (line 5)`},
		},
		{
			name: "yaml syntax",
			data: "sources: [\n",
			want: []string{`yaml: did not find expected node content (line 1)`},
		},
		{
			name: "two documents",
			data: minimal + "---\nlake: x\n",
			want: []string{`yaml: the file holds more than one document (line 5)`},
		},
		{
			name: "all errors are returned",
			data: "lake: ./l\nlak: 1\nsources:\n  - name: a\n    url: postgres://h/db\n    flush-rows: many\n    flush-bytes: lots\n",
			want: []string{
				`lak: unknown key, did you mean "lake"? (line 2)`,
				`sources[0].flush-rows: "many" is not a whole number, 0 or more (line 6)`,
				`sources[0].flush-bytes: "lots" is not a size (write bytes, or a whole number with B, KiB, MiB, GiB, KB, MB or GB, as in 64MiB) (line 7)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), env(tt.env))
			if err == nil {
				t.Fatalf("no error, got %+v", c)
			}
			if c != nil {
				t.Errorf("a Config with errors: %+v", c)
			}
			if got := errorLines(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestIngestOptions(t *testing.T) {
	s := Source{
		Name: "orders", URL: "postgres://h/orders", Publication: "p", Slot: "s",
		Tables: []string{"public.a"}, Snapshot: "never", SnapshotWorkers: 2,
		FlushInterval: time.Second, FlushRows: 10, FlushBytes: 20, MemoryBudget: 30, SpillDir: "/spill",
	}
	want := ingest.Options{
		Source: "postgres://h/orders", Name: "orders", Publication: "p", Slot: "s",
		Tables: []string{"public.a"}, Snapshot: "never", SnapshotWorkers: 2,
		FlushAge: time.Second, FlushRows: 10, FlushBytes: 20, MemoryBudget: 30, SpillDir: "/spill",
	}
	if got := s.IngestOptions(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// zero fields stay zero: ingest applies its defaults
	if got := (Source{Name: "a", URL: "postgres://h/a"}).IngestOptions(); !reflect.DeepEqual(got, ingest.Options{Source: "postgres://h/a", Name: "a"}) {
		t.Errorf("got %+v", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CONFIG_TEST_PW", "pw")
	path := filepath.Join(dir, "cdclake.yaml")
	data := `
catalog: sqlite://cat/catalog.db
sources:
  - name: orders
    url: postgres://cdc:${CONFIG_TEST_PW}@h/orders
    spill-dir: spill
  - name: payments
    url: postgres://cdc@h/payments
    spill-dir: /abs/spill
checks:
  dir: /etc/checks
`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Lake, c.Catalog, c.Sources[0].SpillDir, c.Sources[1].SpillDir, c.KPIs.Dir, c.Checks.Dir, c.Sources[0].URL}
	want := []string{
		filepath.Join(dir, "lake"), "sqlite://" + filepath.Join(dir, "cat/catalog.db"),
		filepath.Join(dir, "spill"), "/abs/spill", filepath.Join(dir, "kpis"), "/etc/checks",
		"postgres://cdc:pw@h/orders",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	if err := os.WriteFile(path, []byte("lak: x\nsources: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	wantErrs := []string{
		path + `: lak: unknown key, did you mean "lake"? (line 1)`,
		path + `: sources: at least one source is required (line 2)`,
	}
	if got := errorLines(t, err); !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("got %q", got)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestExample(t *testing.T) {
	data, err := os.ReadFile("../examples/cdclake.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"CATALOG_PGPASSWORD":    "c",
		"ORDERS_PGPASSWORD":     "o",
		"PAYMENTS_PGPASSWORD":   "p",
		"SHIPPING_DATABASE_URL": "postgres://cdc:s@shipping-db/shipping",
	}
	c, err := Parse(data, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.Sources {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"orders", "payments", "shipping"}) {
		t.Errorf("sources %q", names)
	}
	if c.Sources[2].FlushInterval != 30*time.Second || c.Serve.Addr != "0.0.0.0:8080" {
		t.Errorf("defaults of ${VAR:-default} not used: %+v", c)
	}
	// every variable the example needs is named in its errors when unset
	_, err = Parse(data, env(nil))
	for name := range vars {
		if err == nil || !strings.Contains(err.Error(), "environment variable "+name+" is not set") {
			t.Errorf("unset %s not reported: %v", name, err)
		}
	}
}
