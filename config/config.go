package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cdclake/cdclake/ingest"
)

// Config is the content of a cdclake.yaml file. Parse and Load fill in the
// defaults of the keys left out, but for the Source fields that package
// ingest defaults: zero there means ingest's default.
type Config struct {
	// Lake is where the lake's files live: a folder, file:///abs/path or
	// s3://bucket/prefix (default ./lake).
	Lake string
	// Catalog is a SQLite file path or a postgres:// URL. Empty means
	// catalog.db inside a folder lake; an s3:// lake needs one.
	Catalog string
	// Sources are the PostgreSQL databases to stream, at least one.
	Sources    []Source
	Compaction Compaction
	Serve      Serve
	KPIs       KPIs
	Checks     Checks
}

// Source is one PostgreSQL database streamed into the lake. Its zero
// fields take the defaults of ingest.Options.
type Source struct {
	// Name names the source in the lake (its namespace) and in SQL (its
	// prefix): 1 to 55 of a-z, 0-9 and _, unique in the file.
	Name string
	// URL is the database's postgres:// URL. A password in it comes from
	// ${VAR}; without one, PGPASSWORD or ~/.pgpass give it.
	URL string
	// Publication and Slot default to cdclake_<name>.
	Publication string
	Slot        string
	// Tables (schema.table) limit a publication cdclake creates; empty
	// means all tables.
	Tables []string
	// Snapshot is "initial" (default) or "never".
	Snapshot string
	// SnapshotWorkers defaults to the number of cores.
	SnapshotWorkers int
	// A batch is committed when its oldest change is FlushInterval old
	// (default 1s), or it holds FlushRows rows (default 200,000) or
	// FlushBytes bytes (default 64 MiB).
	FlushInterval time.Duration
	FlushRows     int
	FlushBytes    int64
	// MemoryBudget bounds the memory of transactions in flight (default
	// 256 MiB); beyond half of it they spill to SpillDir (default: a
	// folder in the system temp dir).
	MemoryBudget int64
	SpillDir     string
}

// Compaction sets how the lake is compacted and cleaned.
type Compaction struct {
	// Interval is the pause between compaction passes (default 5m); an
	// explicit 0 disables compaction.
	Interval time.Duration
	// SnapshotRetention is how long old snapshots of the current-state
	// tables stay readable for time travel (default 168h).
	SnapshotRetention time.Duration
	// ChangelogRetention is how long a changelog's old snapshots are kept
	// (default 15m).
	ChangelogRetention time.Duration
	// OrphanAge is how old an unreferenced file must be before it is
	// deleted (default 24h).
	OrphanAge time.Duration
}

// Serve sets the network endpoints; an explicitly empty address disables
// its endpoint.
type Serve struct {
	// Addr is the HTTP address: SQL, KPIs and the REST catalog (default
	// 127.0.0.1:8080).
	Addr string
	// PGAddr is the PostgreSQL wire protocol address (default
	// 127.0.0.1:5433).
	PGAddr string
	// PGTLSCert and PGTLSKey are PEM files of a certificate (chain) and
	// its key: with them the PostgreSQL wire protocol requires TLS.
	PGTLSCert, PGTLSKey string
}

// KPIs sets where the KPI definitions are read from.
type KPIs struct {
	Dir string // default ./kpis
}

// Checks sets where the data checks are read from.
type Checks struct {
	Dir string // default ./checks
}

// IngestOptions returns the ingest options of the source.
func (s Source) IngestOptions() ingest.Options {
	return ingest.Options{
		Source:          s.URL,
		Name:            s.Name,
		Publication:     s.Publication,
		Slot:            s.Slot,
		Tables:          s.Tables,
		Snapshot:        s.Snapshot,
		SnapshotWorkers: s.SnapshotWorkers,
		FlushAge:        s.FlushInterval,
		FlushRows:       s.FlushRows,
		FlushBytes:      s.FlushBytes,
		MemoryBudget:    s.MemoryBudget,
		SpillDir:        s.SpillDir,
	}
}

// Load reads and parses the file at path, with ${VAR} taken from the
// environment. Relative paths in it (lake, catalog, spill-dir, kpis.dir,
// checks.dir, and their defaults) are taken from the file's folder, so
// the file means the same whatever the working directory. Each error is
// prefixed with path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, errs := parse(data, os.LookupEnv)
	if len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("%s: %w", path, e)
		}
		return nil, errors.Join(errs...)
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// Parse parses a config file's content; getenv looks up the variables of
// ${VAR} references (nil means os.LookupEnv). Relative paths are left as
// written. The error joins one error per problem found.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	c, errs := parse(data, getenv)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// setDefaults fills in the settings left out; given holds the paths of
// the keys given a value in the file. Where empty or zero has a meaning of
// its own (compaction.interval, serve.*), only a key left out (or given
// no value) takes the default.
func (c *Config) setDefaults(given map[string]int) {
	if c.Lake == "" {
		c.Lake = "./lake"
	}
	if _, ok := given["compaction.interval"]; !ok {
		c.Compaction.Interval = 5 * time.Minute
	}
	if c.Compaction.SnapshotRetention == 0 {
		c.Compaction.SnapshotRetention = 168 * time.Hour
	}
	if c.Compaction.ChangelogRetention == 0 {
		c.Compaction.ChangelogRetention = 15 * time.Minute
	}
	if c.Compaction.OrphanAge == 0 {
		c.Compaction.OrphanAge = 24 * time.Hour
	}
	if _, ok := given["serve.addr"]; !ok {
		c.Serve.Addr = "127.0.0.1:8080"
	}
	if _, ok := given["serve.pg-addr"]; !ok {
		c.Serve.PGAddr = "127.0.0.1:5433"
	}
	if c.KPIs.Dir == "" {
		c.KPIs.Dir = "./kpis"
	}
	if c.Checks.Dir == "" {
		c.Checks.Dir = "./checks"
	}
}

// resolvePaths makes the relative paths of c relative to dir.
func (c *Config) resolvePaths(dir string) {
	resolve := func(p *string) {
		if *p != "" && !strings.Contains(*p, "://") && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	resolve(&c.Lake)
	resolve(&c.Catalog)
	for _, scheme := range []string{"sqlite://", "file://"} {
		if rest, ok := strings.CutPrefix(c.Catalog, scheme); ok {
			resolve(&rest)
			c.Catalog = scheme + rest
		}
	}
	resolve(&c.KPIs.Dir)
	resolve(&c.Checks.Dir)
	for i := range c.Sources {
		resolve(&c.Sources[i].SpillDir)
	}
}
