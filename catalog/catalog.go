package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// table locations
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// Name is the catalog name recorded in the catalog's own tables.
const Name = "cdclake"

// Options say where the catalog lives. The zero value is not usable:
// URL and Warehouse are required.
type Options struct {
	// URL is a SQLite file path (or sqlite:// URL) or a postgres:// URL.
	URL string
	// Warehouse is the lake URL under which new tables are placed.
	Warehouse string
	// Props are passed to iceberg-go (for example s3.endpoint, s3.region).
	Props map[string]string
}

// Catalog is the lake's metadata store.
type Catalog struct {
	warehouse string
	ice       *sqlcat.Catalog
	db        *sql.DB
	dialect   sqlcat.SupportedDialect
}

// Open opens (and on first use creates) the catalog.
func Open(ctx context.Context, o Options) (*Catalog, error) {
	driver, dsn, dialect, err := dataSource(o.URL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", Redact(o.URL), err)
	}
	props := iceberg.Properties{"warehouse": o.Warehouse}
	for k, v := range o.Props {
		props[k] = v
	}
	// Two processes creating a new PostgreSQL catalog at once can both
	// pass CREATE TABLE IF NOT EXISTS and one then fails on PostgreSQL's
	// unique index of type names: the tables exist by then, so try again.
	for attempt := 1; ; attempt++ {
		c, err := create(ctx, db, dialect, props, o)
		if err == nil || !createRace(err) || attempt == 5 {
			if err != nil {
				db.Close()
			}
			return c, err
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
}

// create opens the Iceberg catalog on db and creates what is missing.
func create(ctx context.Context, db *sql.DB, dialect sqlcat.SupportedDialect, props iceberg.Properties, o Options) (*Catalog, error) {
	ice, err := sqlcat.NewCatalog(Name, db, dialect, props)
	if err != nil {
		return nil, fmt.Errorf("open iceberg catalog %s: %w", Redact(o.URL), err)
	}
	c := &Catalog{warehouse: o.Warehouse, ice: ice, db: db, dialect: dialect}
	if err := c.migrate(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// createRace reports an error of a CREATE that raced another one.
func createRace(err error) bool {
	for _, code := range []string{"23505", "42P07", "42710"} { // unique, duplicate table, duplicate object
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == code || strings.Contains(err.Error(), "SQLSTATE "+code) {
			return true
		}
	}
	return false
}

// Iceberg returns the Iceberg catalog holding the lake's tables.
func (c *Catalog) Iceberg() icecat.Catalog { return c.ice }

// Warehouse returns the lake URL new tables are placed under.
func (c *Catalog) Warehouse() string { return c.warehouse }

// Close releases the database connections.
func (c *Catalog) Close() error { return c.db.Close() }

// dataSource turns a catalog URL into a database/sql driver and DSN.
func dataSource(raw string) (driver, dsn string, dialect sqlcat.SupportedDialect, err error) {
	switch {
	case raw == "":
		return "", "", "", errors.New("no catalog given (pass --catalog with a SQLite path or a postgres:// URL)")
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return "pgx", raw, sqlcat.Postgres, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite://"), "file://")
	if strings.Contains(path, "://") {
		return "", "", "", fmt.Errorf("catalog %q: unknown scheme (use a SQLite file path or a postgres:// URL)", Redact(raw))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", "", fmt.Errorf("catalog path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", "", "", fmt.Errorf("create catalog folder: %w", err)
	}
	dsn = "file:" + abs + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	return sqliteshim.ShimName, dsn, sqlcat.SQLite, nil
}

// Redact removes passwords from a URL so it can be shown: the one in
// its user information and any password query parameter. It works on the
// text, not on url.Parse, so that a password with an unencoded #, %, / or
// @ (which url.Parse rejects or misreads) is hidden too: everything
// between "://" and the last "@" is taken as user:password.
func Redact(raw string) string {
	out := raw
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
				rest = user + ":xxxxx" + rest[at:]
			}
		}
		out = scheme + "://" + rest
	}
	return passwordParam.ReplaceAllString(out, "${1}xxxxx")
}

// passwordParam matches a password query parameter's value, up to the
// next parameter.
var passwordParam = regexp.MustCompile(`(?i)([?&]password=)[^&]*`)
