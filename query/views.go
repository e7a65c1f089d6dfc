package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/compact"
	"github.com/cdclake/cdclake/lakeformat"
)

// lakeTable is one source table of the lake: a changelog table and,
// once compaction ran, a snapshot table.
type lakeTable struct {
	// Source, Schema and Name are the PostgreSQL names (view names).
	Source, Schema, Name string
	HasSnapshot          bool
	// ns and ident are the Iceberg namespace and the snapshot table's
	// last level, encoded as lakeformat.IdentPart does.
	ns    table.Identifier
	ident string
}

func (t lakeTable) String() string { return t.Source + "." + t.Schema + "." + t.Name }

func (t lakeTable) changes() table.Identifier {
	return table.Identifier{t.ns[0], t.ns[1], t.ident + lakeformat.ChangesSuffix}
}

func (t lakeTable) snapshot() table.Identifier { return table.Identifier{t.ns[0], t.ns[1], t.ident} }

// listTables lists the lake's tables from the catalog alone (no metadata
// files are read). A table exists once it has a changelog.
func listTables(ctx context.Context, cat icecat.Catalog) ([]lakeTable, error) {
	nss, err := cat.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []lakeTable
	for _, ns := range nss {
		if len(ns) != 2 {
			continue // [source, schema] only
		}
		names := map[string]bool{}
		for id, err := range cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables of %s: %w", strings.Join(ns, "."), err)
			}
			names[id[len(id)-1]] = true
		}
		for n := range names {
			if base, ok := strings.CutSuffix(n, lakeformat.ChangesSuffix); ok && base != "" {
				out = append(out, lakeTable{Source: lakeformat.NamePart(ns[0]), Schema: lakeformat.NamePart(ns[1]),
					Name: lakeformat.NamePart(base), HasSnapshot: names[base], ns: ns, ident: base})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// dataFile is one Parquet file a view reads.
type dataFile struct {
	URI  string
	Size int64
}

// plan is the planned state of one lake table's views: the spec with
// Iceberg file URIs in place of local paths, and the metadata versions it
// was planned from.
type plan struct {
	version string // metadata locations of changelog and snapshot
	spec    viewSpec
	files   []dataFile // every file the spec names
}

// loadVersion loads the table's metadata (snapshot first, so that its
// watermark is never ahead of the changelog read after it) and returns
// the loaded tables and their version.
func loadVersion(ctx context.Context, cat icecat.Catalog, t lakeTable) (snap, changes *table.Table, version string, err error) {
	if t.HasSnapshot {
		snap, err = cat.LoadTable(ctx, t.snapshot())
		if errors.Is(err, icecat.ErrNoSuchTable) {
			snap, err = nil, nil
		}
		if err != nil {
			return nil, nil, "", fmt.Errorf("load %s: %w", t, err)
		}
	}
	changes, err = cat.LoadTable(ctx, t.changes())
	if err != nil {
		return nil, nil, "", fmt.Errorf("load %s%s: %w", t, lakeformat.ChangesSuffix, err)
	}
	version = changes.MetadataLocation()
	if snap != nil {
		version += "|" + snap.MetadataLocation()
	}
	return snap, changes, version, nil
}

// planTable plans the files of both views of a loaded table.
func planTable(ctx context.Context, t lakeTable, snap, changes *table.Table, version string) (plan, error) {
	p := plan{version: version}
	var err error
	p.spec.Source, p.spec.Meta, err = splitColumns(changes.Schema())
	if err != nil {
		return p, fmt.Errorf("%s: %w", t, err)
	}
	if s := changes.Properties()[lakeformat.PropPrimaryKey]; s != "" {
		if err := json.Unmarshal([]byte(s), &p.spec.Keys); err != nil {
			return p, fmt.Errorf("%s: bad %s %q: %w", t, lakeformat.PropPrimaryKey, s, err)
		}
	}
	if p.spec.Defaults, err = columnDefaults(changes.Properties()[lakeformat.PropColumnDefaults], p.spec.Source); err != nil {
		return p, fmt.Errorf("%s: %w", t, err)
	}
	all, err := planFiles(ctx, changes)
	if err != nil {
		return p, fmt.Errorf("plan %s%s: %w", t, lakeformat.ChangesSuffix, err)
	}
	p.files = append(p.files, all...)
	p.spec.AllChanges = uris(all)
	p.spec.Tail = p.spec.AllChanges
	if snap != nil {
		p.spec.HasSnapshot = true
		w, err := strconv.ParseInt(snap.Properties()[lakeformat.PropSourceLSN], 10, 64)
		if err != nil {
			return p, fmt.Errorf("%s: snapshot table has no valid %s: %w", t, lakeformat.PropSourceLSN, err)
		}
		p.spec.Watermark = w
		p.spec.SnapshotIDs = map[int]int{}
		for sid, cid := range compact.ChangelogFieldIDs(snap, changes.Schema()) {
			p.spec.SnapshotIDs[cid] = sid
		}
		sf, err := planFiles(ctx, snap)
		if err != nil {
			return p, fmt.Errorf("plan %s: %w", t, err)
		}
		p.files = append(p.files, sf...)
		p.spec.Snapshot = uris(sf)
		// only changelog files that may hold rows at or after the
		// watermark take part in the merge (pruned by column stats)
		tail, err := planFiles(ctx, changes, table.WithRowFilter(iceberg.GreaterThanEqual(iceberg.Reference(lakeformat.ColLSN), w)))
		if err != nil {
			return p, fmt.Errorf("plan %s%s: %w", t, lakeformat.ChangesSuffix, err)
		}
		p.spec.Tail = uris(tail)
	}
	return p, nil
}

func planFiles(ctx context.Context, tbl *table.Table, opts ...table.ScanOption) ([]dataFile, error) {
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	tasks, err := tbl.Scan(opts...).PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dataFile, 0, len(tasks))
	for _, task := range tasks {
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			return nil, fmt.Errorf("file %s has delete files, which query does not apply", task.File.FilePath())
		}
		if task.File.FileFormat() != iceberg.ParquetFile {
			return nil, fmt.Errorf("file %s is %s, not Parquet", task.File.FilePath(), task.File.FileFormat())
		}
		out = append(out, dataFile{URI: task.File.FilePath(), Size: task.File.FileSizeBytes()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URI < out[j].URI })
	return out, nil
}

func uris(fs []dataFile) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.URI
	}
	return out
}

// columnDefaults reads a changelog's cdclake.column-defaults for the
// source columns it names.
func columnDefaults(prop string, cols []column) ([]columnDefault, error) {
	if prop == "" {
		return nil, nil
	}
	var m map[string]struct {
		Value    json.RawMessage `json:"value"`
		LSN, Seq int64
	}
	if err := json.Unmarshal([]byte(prop), &m); err != nil {
		return nil, fmt.Errorf("bad %s %q: %w", lakeformat.PropColumnDefaults, prop, err)
	}
	var out []columnDefault
	for _, c := range cols {
		d, ok := m[c.Name]
		if !ok {
			continue
		}
		var lit string
		var str string
		switch {
		case json.Unmarshal(d.Value, &str) == nil:
			lit = quoteString(str)
		case len(d.Value) > 0 && (d.Value[0] == '[' || d.Value[0] == '{'):
			lit = "CAST(" + quoteString(string(d.Value)) + " AS JSON)"
		default: // a number or a boolean
			lit = string(d.Value)
		}
		out = append(out, columnDefault{Name: c.Name, SQL: "CAST(" + lit + " AS " + c.Type + ")", LSN: d.LSN, Seq: d.Seq})
	}
	return out, nil
}

// splitColumns returns a schema's source columns and its _cdc_ columns.
func splitColumns(sc *iceberg.Schema) (src, meta []column, err error) {
	for _, f := range sc.Fields() {
		typ, err := duckType(f.Type)
		if err != nil {
			return nil, nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		c := column{Name: f.Name, Type: typ, ID: f.ID}
		if strings.HasPrefix(f.Name, lakeformat.MetaPrefix) {
			meta = append(meta, c)
		} else {
			src = append(src, c)
		}
	}
	return src, meta, nil
}

// localize returns a copy of spec with every Iceberg URI replaced by the
// local path DuckDB reads.
func localize(spec viewSpec, local func(uri string) (string, error)) (viewSpec, error) {
	var err error
	conv := func(in []string) []string {
		if in == nil || err != nil {
			return in
		}
		out := make([]string, len(in))
		for i, u := range in {
			out[i], err = local(u)
			if err != nil {
				return nil
			}
		}
		return out
	}
	spec.AllChanges = conv(spec.AllChanges)
	spec.Tail = conv(spec.Tail)
	spec.Snapshot = conv(spec.Snapshot)
	return spec, err
}
