package query

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cdclake/cdclake/lakeformat"
)

// defaultCatalog is DuckDB's name for the in-memory database that holds
// the two-part (schema.table) views.
const defaultCatalog = "memory"

// reservedCatalogs cannot be source names in DuckDB.
var reservedCatalogs = map[string]bool{"memory": true, "system": true, "temp": true, "main": true}

// ensure brings the views of tables up to date with the catalog and pins
// the files they read until release is called.
func (e *Engine) ensure(ctx context.Context, tables []lakeTable, uniq map[string]bool) (release func(), err error) {
	var releases []func()
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	for _, t := range tables {
		r, err := e.ensureTable(ctx, t, uniq[t.String()])
		if err != nil {
			release()
			return nil, err
		}
		releases = append(releases, r)
	}
	return release, nil
}

func (e *Engine) ensureTable(ctx context.Context, t lakeTable, twoPart bool) (func(), error) {
	key := t.String()
	e.mu.Lock()
	l := e.tableLocks[key]
	if l == nil {
		l = &sync.Mutex{}
		e.tableLocks[key] = l
	}
	e.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	e.mu.Lock()
	st := e.views[key]
	e.mu.Unlock()

	snap, changes, version, err := loadVersion(ctx, e.cat.Iceberg(), t)
	if err != nil {
		return nil, err
	}
	current := st != nil && st.version == version
	var p plan
	if current {
		p = st.plan
	} else if p, err = planTable(ctx, t, snap, changes, version); err != nil {
		return nil, err
	}
	release, err := e.acquire(ctx, p.files)
	if err != nil {
		return nil, err
	}
	if current && st.twoPart == twoPart {
		return release, nil
	}
	spec, err := localize(p.spec, e.localPath)
	if err == nil {
		err = e.createViews(ctx, t, spec, twoPart)
	}
	if err != nil {
		release()
		return nil, err
	}
	ns := &viewState{version: version, plan: p, twoPart: twoPart}
	if e.cache != nil {
		for _, f := range p.files {
			k, _ := e.objectKey(f.URI)
			ns.keys = append(ns.keys, k)
		}
		// a query running now may bind the old or the new views: keep the
		// files of both until every one of them has ended
		keep := append([]string{}, ns.keys...)
		if st != nil {
			keep = append(keep, st.keys...)
		}
		e.cache.pin(keep)
		e.afterActive(func() { e.cache.unpin(keep) })
	}
	e.mu.Lock()
	e.views[key] = ns
	e.mu.Unlock()
	e.log.Debug("views updated", "table", key, "files", len(p.files), "snapshot", p.spec.HasSnapshot)
	return release, nil
}

// forget drops what is known of tables' views, so the next query plans
// them again.
func (e *Engine) forget(tables []lakeTable) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range tables {
		delete(e.views, t.String())
	}
}

// acquire makes the files readable by DuckDB until release: a no-op for
// folder lakes, a cache fetch and pin for S3 lakes.
func (e *Engine) acquire(ctx context.Context, files []dataFile) (func(), error) {
	if e.cache == nil {
		return func() {}, nil
	}
	objs := make([]object, len(files))
	for i, f := range files {
		k, err := e.objectKey(f.URI)
		if err != nil {
			return nil, err
		}
		objs[i] = object{Key: k, Size: f.Size}
	}
	return e.cache.acquire(ctx, objs)
}

// objectKey returns the lake key of an s3:// file URI.
func (e *Engine) objectKey(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "s3" && u.Scheme != "s3a") || u.Host != e.o.Lake.Bucket {
		return "", fmt.Errorf("file %s is not in the lake %s", uri, e.o.Lake.URL())
	}
	key := strings.TrimPrefix(u.Path, "/")
	if p := e.o.Lake.Prefix; p != "" {
		var ok bool
		if key, ok = strings.CutPrefix(key, p+"/"); !ok {
			return "", fmt.Errorf("file %s is not in the lake %s", uri, e.o.Lake.URL())
		}
	}
	return key, nil
}

// localPath returns the local file DuckDB reads for a file URI.
func (e *Engine) localPath(uri string) (string, error) {
	if e.cache != nil {
		k, err := e.objectKey(uri)
		if err != nil {
			return "", err
		}
		return e.cache.path(k), nil
	}
	p := uri
	if strings.Contains(uri, "://") {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "file" {
			return "", fmt.Errorf("file %s is not in the lake %s", uri, e.o.Lake.URL())
		}
		p = u.Path
	}
	rel, err := filepath.Rel(e.o.Lake.Path, filepath.Clean(p))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("file %s is not in the lake %s", uri, e.o.Lake.URL())
	}
	return filepath.Clean(p), nil
}

// createViews (re)creates the views of one lake table: source.schema.table
// and its __changes view always, schema.table too when twoPart.
func (e *Engine) createViews(ctx context.Context, t lakeTable, spec viewSpec, twoPart bool) error {
	if reservedCatalogs[strings.ToLower(t.Source)] {
		return fmt.Errorf("source name %q is reserved in DuckDB; rename the source", t.Source)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cat, sch := quoteIdent(t.Source), quoteIdent(t.Schema)
	name, changes := quoteIdent(t.Name), quoteIdent(t.Name+lakeformat.ChangesSuffix)
	var stmts []string
	if !e.attached[t.Source] {
		stmts = append(stmts, "ATTACH IF NOT EXISTS ':memory:' AS "+cat)
	}
	if !e.schemas[t.Source+"."+t.Schema] {
		stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+cat+"."+sch)
	}
	stmts = append(stmts,
		"CREATE OR REPLACE VIEW "+cat+"."+sch+"."+changes+" AS "+changesSQL(spec),
		"CREATE OR REPLACE VIEW "+cat+"."+sch+"."+name+" AS "+currentSQL(spec))
	two := defaultCatalog + "." + sch
	if twoPart {
		stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+two,
			"CREATE OR REPLACE VIEW "+two+"."+changes+" AS SELECT * FROM "+cat+"."+sch+"."+changes,
			"CREATE OR REPLACE VIEW "+two+"."+name+" AS SELECT * FROM "+cat+"."+sch+"."+name)
	} else if e.schemas[defaultCatalog+"."+t.Schema] {
		stmts = append(stmts, "DROP VIEW IF EXISTS "+two+"."+changes, "DROP VIEW IF EXISTS "+two+"."+name)
	}
	for _, s := range stmts {
		if _, err := e.admin.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create views of %s: %w", t, err)
		}
	}
	e.attached[t.Source] = true
	e.schemas[t.Source+"."+t.Schema] = true
	if twoPart {
		e.schemas[defaultCatalog+"."+t.Schema] = true
	}
	return nil
}
