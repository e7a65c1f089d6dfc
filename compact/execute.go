package compact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// errStale reports a plan whose base changed under it (another compactor
// committed): plan again.
var errStale = errors.New("the table changed since it was planned")

// snapshotProps are set on every snapshot table.
var snapshotProps = iceberg.Properties{
	"format-version":                             "2",
	"write.parquet.compression-codec":            "zstd",
	"write.parquet.compression-level":            "1",
	"commit.manifest-merge.enabled":              "true",
	"commit.manifest.min-count-to-merge":         "10",
	"write.metadata.delete-after-commit.enabled": "true",
	"write.metadata.previous-versions-max":       "10",
}

const batchRows = 64 << 10 // rows per record batch handed to the Parquet writer

// compactTable applies the plan's changes to the snapshot table in one
// commit.
func (c *Compactor) compactTable(ctx context.Context, p Plan, res *Result) error {
	log := c.o.Logger.With("table", p.Table.String())
	t, err := c.loadTables(ctx, p.Table)
	if err != nil {
		return err
	}
	keys := primaryKey(t.changelog)
	switch {
	case p.Create && t.snapshot != nil, !p.Create && t.snapshot == nil:
		return errStale
	case p.Create:
		if t.snapshot, err = createSnapshotTable(ctx, c, p.Table, t.changelog, keys); err != nil {
			return err
		}
	case currentID(t.snapshot) != p.SnapshotID:
		return errStale
	}
	// the snapshot table's columns follow the changelog's as of the
	// changes read (schema.go)
	clSchema, err := t.changelog.Scan(table.WithSnapshotID(p.ChangelogSnapshotID)).Projection()
	if err != nil {
		return fmt.Errorf("schema of %s: %w", p.Table, err)
	}
	var schemaProps iceberg.Properties
	if t.snapshot, schemaProps, err = syncSchema(ctx, t.snapshot, clSchema, t.changelog.Properties(), log); err != nil {
		return fmt.Errorf("update the schema of %s: %w", p.Table, err)
	}

	// a backlog over MaxChangeRows: its oldest rows now, the rest in the
	// next commit
	if p.ChangeRows > c.o.MaxChangeRows {
		to, err := backlogCut(ctx, t.changelog, p, c.o.MaxChangeRows)
		if err != nil {
			return fmt.Errorf("read the changes' positions of %s: %w", p.Table, err)
		}
		if to < p.To {
			log.Info("backlog over the rows one commit applies: applying its oldest first",
				"from_lsn", p.From, "to_lsn", p.To, "slice_to_lsn", to, "max_change_rows", c.o.MaxChangeRows)
			p.To, res.Plan.To, res.backlog = to, to, true
		}
	}

	// the changes, in one record
	start := time.Now()
	filter := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference(lakeformat.ColLSN), int64(p.From)),
		iceberg.LessThan(iceberg.Reference(lakeformat.ColLSN), int64(p.To)))
	var fields []string // all but the columns compaction does not use
	for _, f := range clSchema.Fields() {
		if f.Name != lakeformat.ColXID && f.Name != lakeformat.ColCommitTS {
			fields = append(fields, f.Name)
		}
	}
	changes, err := readAll(ctx, t.changelog.Scan(table.WithSnapshotID(p.ChangelogSnapshotID),
		table.WithRowFilter(filter), table.WithSelectedFields(fields...)))
	if err != nil {
		return fmt.Errorf("read changes of %s: %w", p.Table, err)
	}
	// rows that predate a column added with a default read the default
	defaults, err := lakeformat.ColumnDefaults(t.changelog.Properties())
	if err != nil {
		changes.Release()
		return err
	}
	var inRange []string
	for name, d := range defaults {
		if d.LSN >= int64(p.From) {
			inRange = append(inRange, name)
		}
	}
	if changes, err = fillDefaults(ctx, changes, defaults, inRange); err != nil {
		return fmt.Errorf("read changes of %s: %w", p.Table, err)
	}
	defer changes.Release()
	applied, err := lakeformat.ColumnDefaults(t.snapshot.Properties())
	if err != nil {
		return err
	}
	var fill []string // defaults the snapshot rows lack: every file is rewritten
	for _, name := range pendingDefaults(defaults, applied) {
		if _, ok := t.snapshot.Schema().FindFieldByName(name); ok {
			applied[name] = defaults[name]
			fill = append(fill, name)
		}
	}
	if len(fill) > 0 {
		log.Info("writing column defaults into the rows that predate their columns", "columns", fill)
	}
	cs, err := newChangeSet(changes)
	if err != nil {
		return fmt.Errorf("read changes of %s: %w", p.Table, err)
	}
	outSchema, err := table.SchemaToArrowSchema(t.snapshot.Schema(), nil, true, false)
	if err != nil {
		return err
	}
	outCols := make([]string, outSchema.NumFields())
	for i, f := range outSchema.Fields() {
		outCols[i] = f.Name
	}
	f, err := fold(cs, keys, outCols)
	if err != nil {
		return fmt.Errorf("apply changes of %s: %w", p.Table, err)
	}
	res.ChangeRows = int64(cs.n)
	log.Info("changes read", "rows", cs.n, "keys", len(f.keys), "truncated", f.truncated,
		"from_lsn", p.From, "to_lsn", p.To, "elapsed", time.Since(start).Round(time.Millisecond))

	// route the changed keys to the files holding their key ranges
	var baseFiles []DataFile
	var tasks []table.FileScanTask
	if p.SnapshotID != 0 {
		if baseFiles, tasks, err = snapshotFiles(ctx, t.snapshot, p.SnapshotID, keys); err != nil {
			return fmt.Errorf("list files of %s: %w", p.Table, err)
		}
	}
	sorted := make([]string, 0, len(f.keys))
	for k := range f.keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	firsts := make([]string, len(sorted))
	for i, k := range sorted {
		firsts[i] = k[:f.keys[k].first]
	}
	var links [][2]int
	for _, l := range f.links {
		a, _ := slices.BinarySearch(sorted, l[0])
		b, _ := slices.BinarySearch(sorted, l[1])
		links = append(links, [2]int{a, b})
	}
	routeFiles := baseFiles
	if f.truncated {
		routeFiles = nil
	}
	slots, groups := route(routeFiles, firsts, links)
	if len(fill) > 0 && !f.truncated {
		slots, groups = routeAll(slots, groups, len(routeFiles))
	}

	rowsPerFile := c.rowsPerFile(baseFiles, p)
	var removed []iceberg.DataFile
	if f.truncated {
		for _, task := range tasks {
			removed = append(removed, task.File)
		}
	}
	for _, sl := range slots {
		for _, fi := range sl.files {
			removed = append(removed, tasks[fi].File)
		}
	}
	w := newAsyncWriter(ctx, t.snapshot, outSchema)
	// the base files are read in the current schema (a scan at
	// p.SnapshotID would use that snapshot's, before renames)
	rw := rewrite{scan: t.snapshot.Scan(), tasks: tasks, slots: slots,
		sorted: sorted, f: f, cs: cs, outSchema: outSchema, keys: keys, rowsPerFile: rowsPerFile, log: log,
		defaults: defaults, fill: fill}
	err = rw.run(ctx, groups, w, res)
	added, written, werr := w.close()
	res.WrittenRows = written
	if err == nil {
		err = werr
	}
	cleanup := func() {
		if fs, err := t.snapshot.FS(ctx); err == nil {
			for _, df := range added {
				_ = fs.Remove(df.FilePath())
			}
		}
	}
	if err != nil {
		cleanup()
		return fmt.Errorf("rewrite %s: %w", p.Table, err)
	}

	// publish: one snapshot replacing the rewritten files, with the watermark
	id := uuid.NewString()
	props := iceberg.Properties{lakeformat.PropSourceLSN: strconv.FormatUint(p.To, 10), PropCompactionID: id}
	tx := t.snapshot.NewTransaction()
	switch {
	case len(removed) > 0:
		err = tx.ReplaceDataFilesWithDataFiles(ctx, removed, added, props)
	case len(added) > 0:
		err = tx.AddDataFiles(ctx, added, props)
	default:
		err = tx.AddFiles(ctx, nil, props, false) // an empty snapshot records the watermark
	}
	if err == nil {
		pk, _ := json.Marshal(keys)
		schemaProps[lakeformat.PropSourceLSN], schemaProps[lakeformat.PropPrimaryKey] = strconv.FormatUint(p.To, 10), string(pk)
		if len(fill) > 0 {
			js, _ := json.Marshal(applied)
			schemaProps[lakeformat.PropColumnDefaults] = string(js)
		}
		err = tx.SetProperties(schemaProps)
	}
	if err == nil {
		_, err = tx.Commit(ctx)
	}
	if err != nil {
		ok, known := landed(ctx, c, p.Table, id)
		switch {
		case ok:
			err = nil
		case !known: // keep the files: orphan cleanup removes them if unused
			return fmt.Errorf("commit %s (outcome unknown): %w", p.Table, err)
		case c.lostRace(ctx, t.snapshot, err):
			cleanup()
			return fmt.Errorf("%w: %v", errStale, err)
		default:
			cleanup()
			return fmt.Errorf("commit %s: %w", p.Table, err)
		}
	}
	res.FilesAdded, res.FilesRemoved, res.LSN = len(added), len(removed), p.To
	return nil
}

func currentID(tbl *table.Table) int64 {
	if s := tbl.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}

// landed reports whether a snapshot of compaction id is in the table (a
// commit that returned an error may have succeeded); known is false when
// the table could not be read.
func landed(ctx context.Context, c *Compactor, ref TableRef, id string) (ok, known bool) {
	tbl, err := c.cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return false, false
	}
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties[PropCompactionID] == id {
			return true, true
		}
	}
	return false, true
}

// rowsPerFile estimates how many rows make a file of Options.FileSize.
func (c *Compactor) rowsPerFile(files []DataFile, p Plan) int64 {
	var rows, size int64
	for _, f := range files {
		rows, size = rows+f.Rows, size+f.Bytes
	}
	if rows < 1000 {
		rows, size = 0, 0
		for _, f := range p.ChangeFiles {
			rows, size = rows+f.Rows, size+f.Bytes
		}
	}
	perRow := int64(64)
	if rows > 0 && size > 0 {
		perRow = max(1, size/rows)
	}
	return max(1, c.o.FileSize/perRow)
}

// createSnapshotTable creates the snapshot table of a changelog: its
// source columns and _cdc_lsn, unpartitioned (files hold key ranges).
func createSnapshotTable(ctx context.Context, c *Compactor, ref TableRef, cl *table.Table, keys []string) (*table.Table, error) {
	var fields []iceberg.NestedField
	for _, f := range cl.Schema().Fields() {
		if !cdcColumns[f.Name] || f.Name == lakeformat.ColLSN {
			f.Required = false
			fields = append(fields, f)
		}
	}
	props := iceberg.Properties{}
	for k, v := range snapshotProps {
		props[k] = v
	}
	pk, _ := json.Marshal(keys)
	props[lakeformat.PropPrimaryKey] = string(pk)
	props[lakeformat.PropSourceLSN] = "0"
	if len(keys) > 0 { // exact bounds of the first key column route changes to files
		props[table.MetricsModeColumnConfPrefix+"."+keys[0]] = "full"
	}
	if len(keys) == 1 { // a key is unique: a dictionary only costs time
		props["write.parquet.dict-encoding-enabled.column."+keys[0]] = "false"
	}
	ident := lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name)
	tbl, err := c.cat.Iceberg().CreateTable(ctx, ident, iceberg.NewSchema(0, fields...), icecat.WithProperties(props),
		icecat.WithLocation(catalog.TableLocation(c.cat.Warehouse(), ident)))
	if errors.Is(err, icecat.ErrTableAlreadyExists) {
		return nil, errStale
	}
	if err != nil {
		return nil, fmt.Errorf("create snapshot table %s: %w", ref, err)
	}
	c.o.Logger.Info("created snapshot table", "table", ref.String(), "keys", keys)
	return tbl, nil
}
