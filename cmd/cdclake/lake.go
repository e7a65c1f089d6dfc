package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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
	var bucket lake.Bucket
	props := map[string]string{}
	catURL := f.catalog
	switch loc.Scheme {
	case "file":
		bucket, err = lake.NewFileBucket(loc.Path)
		if catURL == "" {
			catURL = filepath.Join(loc.Path, "catalog.db")
		}
	case "s3":
		opts := lake.S3Options{Bucket: loc.Bucket, Prefix: loc.Prefix}
		bucket, err = lake.NewS3Bucket(ctx, opts)
		if catURL == "" {
			return nil, nil, fmt.Errorf("an s3:// lake needs --catalog (a SQLite file path or a postgres:// URL)")
		}
		if ep := s3Endpoint(); ep != "" {
			props["s3.endpoint"] = ep
		}
		if r := os.Getenv("AWS_REGION"); r != "" {
			props["s3.region"] = r
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if err := lake.Check(ctx, bucket); err != nil {
		return nil, nil, err
	}
	cat, err := catalog.Open(ctx, catalog.Options{URL: catURL, Warehouse: loc.URL(), Props: props})
	if err != nil {
		return nil, nil, err
	}
	return cat, bucket, nil
}

func s3Endpoint() string {
	if ep := os.Getenv("AWS_ENDPOINT_URL_S3"); ep != "" {
		return ep
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}
