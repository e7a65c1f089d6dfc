package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lake"
	"github.com/cdclake/cdclake/query"
)

// queryCommand runs one SQL query on the lake and prints the result.
type queryCommand struct {
	out, errOut io.Writer
}

func init() {
	commands["query"] = func() command { return &queryCommand{out: os.Stdout, errOut: os.Stderr} }
}

func (c *queryCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	var lf lakeFlags
	lf.register(fs)
	var qf engineFlags
	qf.register(fs)
	format := fs.String("format", "table", "output format: table, csv, json (also parquet, arrow)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(`give one SQL query as the argument, e.g. cdclake query "SELECT count(*) FROM public.orders" ("-" reads it from stdin)`)
	}
	if query.ContentType(*format) == "" {
		return fmt.Errorf("--format %q: use table, csv or json", *format)
	}
	sql := fs.Arg(0)
	if sql == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("read query from stdin: %w", err)
		}
		sql = string(b)
	}
	eng, cat, _, err := openEngine(ctx, lf, qf)
	if err != nil {
		return err
	}
	defer cat.Close()
	defer eng.Close()
	res, err := eng.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer res.Release()
	if err := query.Write(c.out, res, *format); err != nil {
		return err
	}
	if *format == query.FormatTable {
		for _, f := range res.Freshness {
			fmt.Fprintf(c.errOut, "-- freshness: %s lsn=%s committed %s (%s ago)\n", f.Source, f.LSNString(),
				f.CommitTime.Format(time.RFC3339), time.Since(f.CommitTime).Round(time.Millisecond))
		}
	}
	return nil
}

// engineFlags configure the query engine (query and serve).
type engineFlags struct {
	o         query.Options
	cacheSize string
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.o.CacheDir, "cache-dir", "", "folder caching S3 lake files for queries (default: under the user cache dir)")
	fs.StringVar(&f.cacheSize, "cache-size", "4GiB", "bound of the S3 file cache (B, KiB, MiB, GiB, TiB)")
	fs.StringVar(&f.o.MemoryLimit, "memory-limit", "1GB", "DuckDB memory limit")
	fs.IntVar(&f.o.Threads, "threads", 0, "DuckDB threads (default: number of CPUs)")
	fs.DurationVar(&f.o.Timeout, "query-timeout", time.Minute, "queries running longer are cancelled")
	fs.Int64Var(&f.o.MaxRows, "max-rows", 1_000_000, "larger results are refused")
}

// openEngine opens the lake, the catalog and the query engine over them.
func openEngine(ctx context.Context, lf lakeFlags, qf engineFlags) (*query.Engine, *catalog.Catalog, lake.Bucket, error) {
	loc, err := lake.Parse(lf.lake)
	if err != nil {
		return nil, nil, nil, err
	}
	size, err := parseBytes(qf.cacheSize)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--cache-size: %w", err)
	}
	cat, bucket, err := lf.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	o := qf.o
	o.Lake, o.Bucket, o.CacheBytes = loc, bucket, size
	eng, err := query.Open(ctx, cat, o)
	if err != nil {
		cat.Close()
		return nil, nil, nil, err
	}
	return eng, cat, bucket, nil
}

// parseBytes parses a size such as 512MiB, 4GiB or 1000000.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 512MiB or 4GiB", s)
	}
	return int64(n * float64(mult)), nil
}
