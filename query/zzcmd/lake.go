package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lake"
)

// lakeFlags are the --lake and --catalog flags every command that reads or
// writes the lake takes.
type lakeFlags struct {
	lake    string
	catalog string
}

func (f *lakeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.lake, "lake", "./lake", "lake URL: a folder path, file:///path or s3://bucket/prefix")
	fs.StringVar(&f.catalog, "catalog", "", "catalog: a SQLite file path or postgres:// URL (default: catalog.db inside a folder lake)")
}

// open checks that the lake is writable and opens the catalog.
func (f *lakeFlags) open(ctx context.Context) (*catalog.Catalog, lake.Bucket, error) {
	loc, err := lake.Parse(f.lake)
	if err != nil {
		return nil, nil, err
	}
	catURL := f.catalog
	if catURL == "" {
		if loc.Scheme != "file" {
			return nil, nil, fmt.Errorf("an s3:// lake needs --catalog (a SQLite file path or a postgres:// URL)")
		}
		catURL = filepath.Join(loc.Path, "catalog.db")
	}
	bucket, err := lake.Open(ctx, loc)
	if err != nil {
		return nil, nil, err
	}
	if err := lake.Check(ctx, bucket); err != nil {
		return nil, nil, err
	}
	props := map[string]string{}
	if s3b, ok := bucket.(*lake.S3Bucket); ok {
		// iceberg-go reads and writes table files itself: give it the same endpoint
		opts := s3b.Options()
		if opts.Endpoint != "" {
			props["s3.endpoint"] = opts.Endpoint
		}
		if cfg := s3b.AWSConfig(); cfg.Region != "" {
			props["s3.region"] = cfg.Region
		}
	}
	cat, err := catalog.Open(ctx, catalog.Options{URL: catURL, Warehouse: loc.URL(), Props: props})
	if err != nil {
		return nil, nil, err
	}
	return cat, bucket, nil
}
