package query

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lake"
)

// Options configure an Engine. The zero value of every field but Lake
// (and Bucket for S3 lakes) means its default.
type Options struct {
	// Lake is the lake's location (--lake). Files of a folder lake are read
	// in place; files of an S3 lake are fetched through Bucket into a
	// local cache first.
	Lake lake.Location
	// Bucket reads the lake's objects; required for S3 lakes.
	Bucket lake.BucketReader
	// CacheDir holds fetched S3 objects (default: a folder per lake under
	// the user cache dir, or a temporary one when another process uses it).
	CacheDir string
	// CacheBytes bounds the cache (default 4 GiB).
	CacheBytes int64
	// MemoryLimit is DuckDB's memory_limit (default "1GB").
	MemoryLimit string
	// Threads is DuckDB's thread count (default: the number of CPUs).
	Threads int
	// MaxConcurrent bounds the queries running at once (default 4); more
	// wait for a free slot.
	MaxConcurrent int
	// Timeout cancels a query that runs longer (default 60 s).
	Timeout time.Duration
	// MaxRows and MaxBytes bound a result (default 1,000,000 rows and
	// 256 MiB of Arrow buffers); larger results fail with ErrTooLarge.
	MaxRows  int64
	MaxBytes int64
	Logger   *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 4 << 30
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = "1GB"
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 1_000_000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "query")
	return o
}

// Engine runs read-only SQL over the lake with an embedded DuckDB. It is
// safe for concurrent use.
type Engine struct {
	cat   *catalog.Catalog
	o     Options
	log   *slog.Logger
	db    *sql.DB
	admin *sql.Conn // runs every DDL statement, under mu
	cache *cache    // nil for folder lakes
	tmp   string    // DuckDB spill folder and private cache, removed at Close
	lock  *os.File  // flock on a shared cache folder

	mu         sync.Mutex
	views      map[string]*viewState // by lakeTable.String()
	tableLocks map[string]*sync.Mutex
	attached   map[string]bool
	schemas    map[string]bool

	activeMu sync.Mutex
	active   map[uint64]chan struct{}
	nextID   uint64
}

// viewState is what the views of one lake table currently show.
type viewState struct {
	version string
	plan    plan
	twoPart bool     // also created as schema.table
	keys    []string // cache keys of its files (S3 lakes)
}

// Open starts DuckDB, locks it down (no file access outside the lake or
// cache folder, no extension loading, configuration frozen) and returns
// an engine over the lake cat describes.
func Open(ctx context.Context, cat *catalog.Catalog, o Options) (*Engine, error) {
	o = o.withDefaults()
	e := &Engine{cat: cat, o: o, log: o.Logger, views: map[string]*viewState{}, tableLocks: map[string]*sync.Mutex{},
		attached: map[string]bool{}, schemas: map[string]bool{}, active: map[uint64]chan struct{}{}}
	var err error
	if e.tmp, err = os.MkdirTemp("", "cdclake-query-"); err != nil {
		return nil, fmt.Errorf("create temp folder: %w", err)
	}
	var allowed string
	switch o.Lake.Scheme {
	case "file":
		allowed = o.Lake.Path
	case "s3":
		if o.Bucket == nil {
			e.Close()
			return nil, errors.New("an s3 lake needs Options.Bucket")
		}
		dir, err := e.cacheDir()
		if err != nil {
			e.Close()
			return nil, err
		}
		if e.cache, err = newCache(dir, o.CacheBytes, o.Bucket, e.log); err != nil {
			e.Close()
			return nil, err
		}
		allowed = dir
	default:
		e.Close()
		return nil, fmt.Errorf("unsupported lake %q", o.Lake.URL())
	}
	if err := e.openDuckDB(ctx, allowed); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

const lockName = ".lock"

// cacheDir picks the S3 object cache folder: the configured or default
// one when no other process holds it, else a private one under tmp.
func (e *Engine) cacheDir() (string, error) {
	dir := e.o.CacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		sum := sha256.Sum256([]byte(e.o.Lake.URL()))
		dir = filepath.Join(base, "cdclake", "lake-"+hex.EncodeToString(sum[:6]))
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create cache folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("lock cache folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		e.log.Info("lake cache folder in use by another process; using a private one", "dir", dir)
		return filepath.Join(e.tmp, "cache"), nil
	}
	e.lock = f
	return dir, nil
}

// openDuckDB starts an in-memory DuckDB and locks it down. Settings are
// global, so they hold for every connection of the pool.
func (e *Engine) openDuckDB(ctx context.Context, allowed string) error {
	conn, err := duckdb.NewConnector("", nil)
	if err != nil {
		return fmt.Errorf("start duckdb: %w", err)
	}
	e.db = sql.OpenDB(conn)
	e.db.SetMaxOpenConns(e.o.MaxConcurrent + 1)
	e.db.SetMaxIdleConns(e.o.MaxConcurrent + 1)
	e.db.SetConnMaxIdleTime(0)
	if e.admin, err = e.db.Conn(ctx); err != nil {
		return fmt.Errorf("connect duckdb: %w", err)
	}
	settings := []string{
		"SET GLOBAL TimeZone = 'UTC'",
		fmt.Sprintf("SET GLOBAL memory_limit = %s", quoteString(e.o.MemoryLimit)),
		fmt.Sprintf("SET GLOBAL threads = %d", e.o.Threads),
		fmt.Sprintf("SET GLOBAL temp_directory = %s", quoteString(filepath.Join(e.tmp, "spill"))),
		fmt.Sprintf("SET GLOBAL allowed_directories = [%s]", quoteString(strings.TrimSuffix(allowed, "/")+"/")),
		"SET GLOBAL enable_external_access = false",
		"SET GLOBAL autoinstall_known_extensions = false",
		"SET GLOBAL autoload_known_extensions = false",
		"SET GLOBAL allow_community_extensions = false",
		"SET GLOBAL lock_configuration = true",
	}
	for _, s := range settings {
		if _, err := e.admin.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("configure duckdb (%s): %w", s, err)
		}
	}
	return nil
}

// Close stops DuckDB and removes temporary files.
func (e *Engine) Close() error {
	var err error
	if e.admin != nil {
		e.admin.Close()
	}
	if e.db != nil {
		err = e.db.Close()
	}
	if e.lock != nil {
		e.lock.Close()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
	return err
}

// Freshness says how current a result is: every change of the source
// committed up to the watermark is in it.
type Freshness struct {
	Source string
	// LSN is the source watermark (end of the last transaction in the lake).
	LSN uint64
	// CommitTime is the commit time of the last transaction below LSN.
	CommitTime time.Time
}

// LSNString formats the watermark as PostgreSQL does (0/16B3748).
func (f Freshness) LSNString() string { return fmt.Sprintf("%X/%X", f.LSN>>32, uint32(f.LSN)) }

// Result is a query's answer, held in memory as Arrow record batches.
type Result struct {
	Schema    *arrow.Schema
	Records   []arrow.RecordBatch
	Rows      int64
	Freshness []Freshness
	Elapsed   time.Duration
}

// Release frees the record batches.
func (r *Result) Release() {
	for _, rec := range r.Records {
		rec.Release()
	}
	r.Records = nil
}

// rename gives columns PostgreSQL's names where names has one.
func (r *Result) rename(names []string) {
	if len(names) != r.Schema.NumFields() {
		return
	}
	fields := r.Schema.Fields()
	changed := false
	for i, n := range names {
		if n != "" && n != fields[i].Name {
			fields[i].Name, changed = n, true
		}
	}
	if !changed {
		return
	}
	md := r.Schema.Metadata()
	r.Schema = arrow.NewSchema(fields, &md)
	for i, rec := range r.Records {
		r.Records[i] = array.NewRecordBatch(r.Schema, rec.Columns(), rec.NumRows())
		rec.Release()
	}
}

// Query runs one read-only SELECT (args bind $1, $2, ...) and returns its
// result with the freshness of the sources it reads.
func (e *Engine) Query(ctx context.Context, sqlText string, args ...any) (*Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	res, err := e.query(ctx, sqlText, args)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, ErrRejected) {
		err = fmt.Errorf("%w after %s (the limit)", ErrTimeout, e.o.Timeout)
	}
	if err != nil {
		e.log.Debug("query failed", "elapsed", time.Since(start), "err", err)
		return nil, err
	}
	res.Elapsed = time.Since(start)
	e.log.Debug("query", "rows", res.Rows, "elapsed", res.Elapsed)
	return res, nil
}

func (e *Engine) query(ctx context.Context, sqlText string, args []any) (*Result, error) {
	var res *Result
	err := e.withViews(ctx, sqlText, func(p parsed, sources []catalog.Source, used []lakeTable) error {
		var err error
		if res, err = e.run(ctx, sqlText, args); err != nil {
			return err
		}
		res.rename(p.names)
		res.Freshness = freshness(sources, used)
		return nil
	})
	return res, err
}

// withViews checks a statement, brings the views of the lake tables it
// names up to date, and calls fn while their files are pinned. The
// sources are read before the tables, so their watermarks never claim
// more than the views show.
func (e *Engine) withViews(ctx context.Context, sqlText string, fn func(p parsed, sources []catalog.Source, used []lakeTable) error) error {
	p, err := e.check(ctx, sqlText)
	if err != nil {
		return err
	}
	sources, err := e.cat.Sources(ctx)
	if err != nil {
		return err
	}
	tables, err := listTables(ctx, e.cat.Iceberg())
	if err != nil {
		return err
	}
	used := resolve(p.refs, tables)
	done := e.begin()
	defer done()
	for attempt := 0; ; attempt++ {
		release, err := e.ensure(ctx, used, unique(tables))
		if err == nil {
			err = fn(p, sources, used)
			release()
		}
		if err != nil && attempt == 0 && missingFile(err) {
			// a file was expired between planning and reading: plan again
			e.forget(used)
			continue
		}
		return err
	}
}

// check accepts one SELECT statement and returns the tables it names.
func (e *Engine) check(ctx context.Context, sqlText string) (parsed, error) {
	var js string
	if err := e.db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", sqlText).Scan(&js); err != nil {
		return parsed{}, fmt.Errorf("parse query: %w", err)
	}
	return checkSerialized(js)
}

// run executes a checked statement and collects its result.
func (e *Engine) run(ctx context.Context, sqlText string, args []any) (*Result, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect duckdb: %w", err)
	}
	defer conn.Close()
	res := &Result{}
	err = conn.Raw(func(dc any) error {
		// the statement type is checked again on DuckDB's own prepared
		// statement: nothing but a SELECT ever executes
		st, err := prepareSelect(ctx, dc, sqlText)
		if err != nil {
			return err
		}
		st.Close()
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err := ar.QueryContext(ctx, sqlText, args...)
		if err != nil {
			return err
		}
		defer rr.Release()
		res.Schema = rr.Schema()
		var bytes int64
		for rr.Next() {
			rec := rr.RecordBatch()
			res.Rows += rec.NumRows()
			bytes += recordBytes(rec)
			if res.Rows > e.o.MaxRows {
				return fmt.Errorf("%w: more than %d rows (add a LIMIT or aggregate)", ErrTooLarge, e.o.MaxRows)
			}
			if bytes > e.o.MaxBytes {
				return fmt.Errorf("%w: more than %d bytes (add a LIMIT or aggregate)", ErrTooLarge, e.o.MaxBytes)
			}
			// the batch points into DuckDB's chunk, freed by the next Next
			cp, err := copyRecord(rec)
			if err != nil {
				return err
			}
			res.Records = append(res.Records, cp)
		}
		return rr.Err()
	})
	if err != nil {
		res.Release()
		return nil, err
	}
	return res, nil
}

// missingFile reports whether DuckDB failed because a planned file is gone.
func missingFile(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "No files found") || strings.Contains(msg, "No such file")
}

func freshness(sources []catalog.Source, used []lakeTable) []Freshness {
	var out []Freshness
	for _, s := range sources {
		for _, t := range used {
			if t.Source == s.Name {
				out = append(out, Freshness{Source: s.Name, LSN: s.LSN, CommitTime: s.CommitTime})
				break
			}
		}
	}
	return out
}

// begin registers a running query; the returned func ends it.
func (e *Engine) begin() func() {
	e.activeMu.Lock()
	defer e.activeMu.Unlock()
	e.nextID++
	id, ch := e.nextID, make(chan struct{})
	e.active[id] = ch
	return func() {
		e.activeMu.Lock()
		delete(e.active, id)
		e.activeMu.Unlock()
		close(ch)
	}
}

// afterActive calls fn once every query running now has ended.
func (e *Engine) afterActive(fn func()) {
	e.activeMu.Lock()
	var chans []chan struct{}
	for _, ch := range e.active {
		chans = append(chans, ch)
	}
	e.activeMu.Unlock()
	go func() {
		for _, ch := range chans {
			<-ch
		}
		fn()
	}()
}

// recordBytes is the size of a record batch's buffers.
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, col := range rec.Columns() {
		add(col.Data())
	}
	return n
}

// copyRecord deep-copies a record batch into Go memory.
func copyRecord(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		if int64(c.Len()) != rec.NumRows() {
			for _, done := range cols[:i] {
				done.Release()
			}
			return nil, fmt.Errorf("copy result: column %d has %d values for %d rows", i, c.Len(), rec.NumRows())
		}
		cp, err := array.Concatenate([]arrow.Array{c}, memory.DefaultAllocator)
		if err != nil {
			for _, done := range cols[:i] {
				done.Release()
			}
			return nil, fmt.Errorf("copy result: %w", err)
		}
		cols[i] = cp
	}
	out := array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}

// prepareSelect prepares a statement on a DuckDB connection and checks
// that it is a SELECT. The caller closes the statement.
func prepareSelect(ctx context.Context, dc any, sqlText string) (*duckdb.Stmt, error) {
	st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, sqlText)
	if err != nil {
		return nil, err
	}
	ds := st.(*duckdb.Stmt)
	typ, err := ds.StatementType()
	if err == nil && typ != duckdb.STATEMENT_TYPE_SELECT {
		err = fmt.Errorf("%w: only SELECT statements run here", ErrRejected)
	}
	if err != nil {
		ds.Close()
		return nil, err
	}
	return ds, nil
}
