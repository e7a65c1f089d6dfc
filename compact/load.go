package compact

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// cdcColumns are the changelog's metadata columns; every other column is
// a source column.
var cdcColumns = map[string]bool{
	lakeformat.ColOp: true, lakeformat.ColLSN: true, lakeformat.ColSeq: true,
	lakeformat.ColXID: true, lakeformat.ColCommitTS: true, lakeformat.ColUnchanged: true,
}

// tables are a source table's loaded changelog and snapshot table (nil
// when it does not exist yet).
type tables struct {
	changelog, snapshot *table.Table
}

func (c *Compactor) loadTables(ctx context.Context, ref TableRef) (tables, error) {
	var t tables
	var err error
	t.changelog, err = c.cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return t, fmt.Errorf("load changelog of %s: %w", ref, err)
	}
	t.snapshot, err = c.cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name))
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("load snapshot table %s: %w", ref, err)
	}
	return t, nil
}

// Load reads the metadata Plan needs about a table (manifests included,
// no data files).
//
// The catalog's record of the table's copy (CopyState) is read before and
// after the tables: a copy recorded done before the changelog was loaded
// has its commit in it; one that is running afterwards, or that started
// or finished in between, counts as running.
func (c *Compactor) Load(ctx context.Context, ref TableRef) (State, error) {
	before, err := c.copyRecord(ctx, ref)
	if err != nil {
		return State{}, err
	}
	t, err := c.loadTables(ctx, ref)
	if err != nil {
		return State{}, err
	}
	after, err := c.copyRecord(ctx, ref)
	if err != nil {
		return State{}, err
	}
	st, err := stateOf(ctx, ref, t)
	if after != nil {
		st.Copy = CopyState{LSN: after.LSN, Running: after.State == catalog.SnapshotRunning ||
			before == nil || before.State == catalog.SnapshotRunning || !before.StartedAt.Equal(after.StartedAt) ||
			before.LSN != after.LSN}
	}
	return st, err
}

// copyRecord returns the catalog's record of a table's latest copy (nil
// when there is none).
func (c *Compactor) copyRecord(ctx context.Context, ref TableRef) (*catalog.TableSnapshot, error) {
	snaps, err := c.cat.Snapshots(ctx, ref.Source)
	if err != nil {
		return nil, fmt.Errorf("read snapshot records of %s: %w", ref, err)
	}
	for _, s := range snaps {
		if s.Source == ref.Source && s.Schema == ref.Schema && s.Table == ref.Name {
			return &s, nil
		}
	}
	return nil, nil
}

func stateOf(ctx context.Context, ref TableRef, t tables) (State, error) {
	st := State{Table: ref, Now: time.Now()}
	cl := t.changelog
	st.Changelog.LSN = tableLSN(cl)
	st.Changelog.Keys = primaryKey(cl)
	for _, f := range cl.Schema().Fields() {
		if !cdcColumns[f.Name] {
			st.Changelog.Columns = append(st.Changelog.Columns, f.Name)
		}
	}
	st.Changelog.Snapshots = snapshotInfos(cl)
	var err error
	if st.Changelog.Defaults, err = lakeformat.ColumnDefaults(cl.Properties()); err != nil {
		return st, fmt.Errorf("changelog of %s: %w", ref, err)
	}
	if s := cl.CurrentSnapshot(); s != nil {
		st.Changelog.SnapshotID = s.SnapshotID
		tasks, err := cl.Scan().PlanFiles(ctx)
		if err != nil {
			return st, fmt.Errorf("list changelog files of %s: %w", ref, err)
		}
		lsnField, _ := cl.Schema().FindFieldByName(lakeformat.ColLSN)
		hourField := -1
		spec := cl.Spec()
		for _, f := range spec.Fields() {
			if _, ok := f.Transform.(iceberg.HourTransform); ok {
				hourField = f.FieldID
			}
		}
		for _, task := range tasks {
			df := task.File
			cf := ChangeFile{Path: df.FilePath(), Hour: -1, Rows: df.Count(), Bytes: df.FileSizeBytes(), MinLSN: 1, MaxLSN: 0}
			if v, ok := df.Partition()[hourField]; ok {
				cf.Hour = asInt64(v)
			}
			lo, hi := df.LowerBoundValues()[lsnField.ID], df.UpperBoundValues()[lsnField.ID]
			if len(lo) == 8 && len(hi) == 8 {
				cf.MinLSN, cf.MaxLSN = int64(binary.LittleEndian.Uint64(lo)), int64(binary.LittleEndian.Uint64(hi))
			}
			st.Changelog.Files = append(st.Changelog.Files, cf)
		}
	}
	if t.snapshot == nil {
		return st, nil
	}
	sn := t.snapshot
	st.Snapshot.Exists = true
	st.Snapshot.LSN = tableLSN(sn)
	st.Snapshot.Snapshots = snapshotInfos(sn)
	if st.Snapshot.Defaults, err = lakeformat.ColumnDefaults(sn.Properties()); err != nil {
		return st, fmt.Errorf("snapshot table %s: %w", ref, err)
	}
	for _, f := range sn.Schema().Fields() {
		if f.Name != lakeformat.ColLSN {
			st.Snapshot.Columns = append(st.Snapshot.Columns, f.Name)
		}
	}
	if s := sn.CurrentSnapshot(); s != nil {
		st.Snapshot.SnapshotID = s.SnapshotID
		files, _, err := snapshotFiles(ctx, sn, s.SnapshotID, st.Changelog.Keys)
		if err != nil {
			return st, fmt.Errorf("list files of snapshot table %s: %w", ref, err)
		}
		st.Snapshot.Files = files
	}
	return st, nil
}

// snapshotFiles lists a snapshot table's data files at a snapshot with
// the key range of each, and their scan tasks.
func snapshotFiles(ctx context.Context, tbl *table.Table, snapshotID int64, keys []string) ([]DataFile, []table.FileScanTask, error) {
	tasks, err := tbl.Scan(table.WithSnapshotID(snapshotID)).PlanFiles(ctx)
	if err != nil {
		return nil, nil, err
	}
	var keyField iceberg.NestedField
	var haveKey bool
	if len(keys) > 0 {
		keyField, haveKey = tbl.Schema().FindFieldByName(keys[0])
	}
	files := make([]DataFile, len(tasks))
	for i, task := range tasks {
		df := task.File
		files[i] = DataFile{Path: df.FilePath(), Rows: df.Count(), Bytes: df.FileSizeBytes()}
		if !haveKey {
			continue
		}
		lo, okLo := encodeBound(keyField.Type, df.LowerBoundValues()[keyField.ID])
		hi, okHi := encodeBound(keyField.Type, df.UpperBoundValues()[keyField.ID])
		if okLo && okHi && df.LowerBoundValues()[keyField.ID] != nil && df.UpperBoundValues()[keyField.ID] != nil {
			files[i].Lo, files[i].Hi = lo, hi
		}
	}
	return files, tasks, nil
}

func snapshotInfos(tbl *table.Table) []SnapshotInfo {
	snaps := tbl.Metadata().Snapshots()
	out := make([]SnapshotInfo, 0, len(snaps))
	for _, s := range snaps {
		si := SnapshotInfo{ID: s.SnapshotID, Time: time.UnixMilli(s.TimestampMs)}
		if s.Summary != nil {
			si.LSN, _ = strconv.ParseUint(s.Summary.Properties[lakeformat.PropSourceLSN], 10, 64)
		}
		out = append(out, si)
	}
	return out
}

// tableLSN returns a table's cdclake.source-lsn property, 0 when unset.
func tableLSN(tbl *table.Table) uint64 {
	v, _ := strconv.ParseUint(tbl.Properties()[lakeformat.PropSourceLSN], 10, 64)
	return v
}

// primaryKey returns a table's cdclake.primary-key property.
func primaryKey(tbl *table.Table) []string {
	var keys []string
	_ = json.Unmarshal([]byte(tbl.Properties()[lakeformat.PropPrimaryKey]), &keys)
	return keys
}

func asInt64(v any) int64 {
	switch v := v.(type) {
	case int32:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	case iceberg.Int32Literal:
		return int64(v)
	case iceberg.Int64Literal:
		return int64(v)
	}
	return -1
}

// Tables lists the source tables that have a changelog, limited to
// Options.Tables when set.
func (c *Compactor) Tables(ctx context.Context) ([]TableRef, error) {
	if len(c.o.Tables) > 0 {
		return c.o.Tables, nil
	}
	nss, err := c.cat.Iceberg().ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []TableRef
	for _, ns := range nss {
		if len(ns) != 2 {
			continue
		}
		for id, err := range c.cat.Iceberg().ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables of %s: %w", strings.Join(ns, "."), err)
			}
			name := lakeformat.NamePart(id[len(id)-1])
			if base, ok := strings.CutSuffix(name, lakeformat.ChangesSuffix); ok && len(id) == 3 {
				out = append(out, TableRef{lakeformat.NamePart(id[0]), lakeformat.NamePart(id[1]), base})
			}
		}
	}
	return out, nil
}
