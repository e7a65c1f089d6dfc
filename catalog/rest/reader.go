package rest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pglogrepl"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// ErrNotFound is returned (wrapped) for a source, table or partition the
// lake does not hold.
var ErrNotFound = errors.New("not found")

// ActiveWindow is how recently a source's watermark must have been written
// for the source to count as active.
const ActiveWindow = 2 * time.Minute

// TableRef names a source table by its PostgreSQL names.
type TableRef struct {
	Source, Schema, Table string
}

func (r TableRef) String() string { return r.Source + "." + r.Schema + "." + r.Table }

// Reader reads the facts the API serves from the catalog and the lake.
// It is safe for concurrent use.
type Reader struct {
	o     Options
	files fileCache
	sums  *checksums
}

// NewReader returns a Reader. See Options for the defaults.
func NewReader(o Options) *Reader { return newReader(o.withDefaults()) }

func newReader(o Options) *Reader {
	r := &Reader{o: o}
	if o.Bucket != nil {
		r.sums = &checksums{bucket: o.Bucket}
	}
	return r
}

// Sources lists every source, ordered by name.
func (r *Reader) Sources(ctx context.Context) ([]Source, error) {
	recs, err := r.o.Catalog.Sources(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := r.o.Catalog.Snapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]Source, 0, len(recs))
	for _, rec := range recs {
		out = append(out, r.source(ctx, rec, snaps))
	}
	return out, nil
}

// Source returns one source.
func (r *Reader) Source(ctx context.Context, name string) (Source, error) {
	rec, err := r.o.Catalog.Source(ctx, name)
	if errors.Is(err, catalog.ErrNoSuchSource) {
		return Source{}, fmt.Errorf("source %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Source{}, err
	}
	snaps, err := r.o.Catalog.Snapshots(ctx, name)
	if err != nil {
		return Source{}, err
	}
	return r.source(ctx, rec, snaps), nil
}

func (r *Reader) status(ctx context.Context, rec catalog.Source) SourceStatus {
	if r.o.SourceStatus == nil {
		return SourceStatus{}
	}
	st, err := r.o.SourceStatus(ctx, rec)
	if err != nil {
		r.o.Logger.Warn("source status unavailable", "source", rec.Name, "err", err)
		return SourceStatus{}
	}
	return st
}

func (r *Reader) source(ctx context.Context, rec catalog.Source, snaps []catalog.TableSnapshot) Source {
	st := r.status(ctx, rec)
	now := r.o.Now()
	s := Source{
		Name: rec.Name, Slot: rec.Slot, Publication: rec.Publication,
		Watermark: Watermark{LSN: rec.LSN, LSNText: pglogrepl.LSN(rec.LSN).String(),
			CommitTime: timePtr(rec.CommitTime), UpdatedAt: timePtr(rec.UpdatedAt)},
		SlotLagBytes: st.SlotLagBytes,
	}
	if c := CompleteThrough(rec, st); !c.IsZero() {
		s.CompleteThrough = &c
		lag := max(now.Sub(c).Seconds(), 0)
		s.LagSeconds = &lag
	}
	for _, ts := range snaps {
		if ts.Source != rec.Name {
			continue
		}
		if s.Snapshot == nil {
			s.Snapshot = &SnapshotProgress{State: catalog.SnapshotDone, Tables: []TableSnapshot{}}
		}
		if ts.State == catalog.SnapshotRunning { // not done, nor retired (dropped)
			s.Snapshot.State = catalog.SnapshotRunning
		}
		s.Snapshot.Tables = append(s.Snapshot.Tables, TableSnapshot{Schema: ts.Schema, Table: ts.Table, State: ts.State,
			Rows: ts.Rows, Bytes: ts.Bytes, TotalBytes: ts.TotalBytes, StartedAt: ts.StartedAt.UTC(), UpdatedAt: ts.UpdatedAt.UTC()})
	}
	switch {
	case st.State != "":
		s.State = st.State
	case s.Snapshot != nil && s.Snapshot.State == catalog.SnapshotRunning:
		s.State = "snapshotting"
	case !rec.UpdatedAt.IsZero() && now.Sub(rec.UpdatedAt) <= ActiveWindow:
		s.State = "active"
	default:
		s.State = "inactive"
	}
	return s
}

// lakeTable is a source table's Iceberg identifiers (nil when missing).
type lakeTable struct {
	ref                 TableRef
	changelog, snapshot table.Identifier
}

// list returns the source tables of the lake, ordered by name. Identifier
// levels are decoded with lakeformat.NamePart.
func (r *Reader) list(ctx context.Context) ([]lakeTable, error) {
	ice := r.o.Catalog.Iceberg()
	nss, err := ice.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	byRef := map[TableRef]*lakeTable{}
	seen := map[string]bool{}
	for _, ns := range nss {
		key := strings.Join(ns, "\x1f")
		if len(ns) != 2 || seen[key] {
			continue
		}
		seen[key] = true
		for id, err := range ice.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables of %s: %w", strings.Join(ns, "."), err)
			}
			name := id[len(id)-1]
			base, isChangelog := strings.CutSuffix(name, lakeformat.ChangesSuffix)
			ref := TableRef{lakeformat.NamePart(ns[0]), lakeformat.NamePart(ns[1]), lakeformat.NamePart(base)}
			lt := byRef[ref]
			if lt == nil {
				lt = &lakeTable{ref: ref}
				byRef[ref] = lt
			}
			if isChangelog {
				lt.changelog = id
			} else {
				lt.snapshot = id
			}
		}
	}
	out := make([]lakeTable, 0, len(byRef))
	for _, lt := range byRef {
		out = append(out, *lt)
	}
	slices.SortFunc(out, func(a, b lakeTable) int {
		return cmp.Or(cmp.Compare(a.ref.Source, b.ref.Source), cmp.Compare(a.ref.Schema, b.ref.Schema), cmp.Compare(a.ref.Table, b.ref.Table))
	})
	return out, nil
}

func (r *Reader) find(ctx context.Context, ref TableRef) (lakeTable, error) {
	all, err := r.list(ctx)
	if err != nil {
		return lakeTable{}, err
	}
	for _, lt := range all {
		if lt.ref == ref {
			return lt, nil
		}
	}
	return lakeTable{}, fmt.Errorf("table %s: %w", ref, ErrNotFound)
}

// load loads an Iceberg table; a nil identifier or a missing table gives nil.
func (r *Reader) load(ctx context.Context, id table.Identifier) (*table.Table, error) {
	if id == nil {
		return nil, nil
	}
	tbl, err := r.o.Catalog.Iceberg().LoadTable(ctx, id)
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", strings.Join(id, "."), err)
	}
	return tbl, nil
}

// Tables lists the source tables, optionally of one source and schema.
func (r *Reader) Tables(ctx context.Context, source, schema string) ([]Table, error) {
	all, err := r.list(ctx)
	if err != nil {
		return nil, err
	}
	out := []Table{}
	for _, lt := range all {
		if (source != "" && lt.ref.Source != source) || (schema != "" && lt.ref.Schema != schema) {
			continue
		}
		t, err := r.table(ctx, lt)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Table returns one source table.
func (r *Reader) Table(ctx context.Context, ref TableRef) (Table, error) {
	lt, err := r.find(ctx, ref)
	if err != nil {
		return Table{}, err
	}
	return r.table(ctx, lt)
}

func (r *Reader) table(ctx context.Context, lt lakeTable) (Table, error) {
	t := Table{Source: lt.ref.Source, Schema: lt.ref.Schema, Name: lt.ref.Table, Path: TablePath(lt.ref), PrimaryKey: []string{}}
	cl, err := r.load(ctx, lt.changelog)
	if err != nil {
		return t, err
	}
	sn, err := r.load(ctx, lt.snapshot)
	if err != nil {
		return t, err
	}
	if cl != nil {
		t.Changelog = icebergTable(cl)
		t.SchemaVersion = cl.Schema().ID
		t.LastChange = lastChange(cl)
		_ = json.Unmarshal([]byte(cl.Properties()[lakeformat.PropPrimaryKey]), &t.PrimaryKey)
	}
	if sn != nil {
		t.Snapshot = icebergTable(sn)
		if sn.CurrentSnapshot() != nil {
			t.Rows = &t.Snapshot.Rows
		}
		t.SnapshotLSN = t.Snapshot.SourceLSN
		if cl == nil {
			t.SchemaVersion = sn.Schema().ID
		}
	}
	return t, nil
}

func icebergTable(tbl *table.Table) *IcebergTable {
	md := tbl.Metadata()
	it := &IcebergTable{Identifier: tbl.Identifier(), Location: tbl.Location(), MetadataLocation: tbl.MetadataLocation(),
		SourceLSN: propUint(tbl.Properties(), lakeformat.PropSourceLSN), SchemaID: tbl.Schema().ID,
		UpdatedAt: time.UnixMilli(md.LastUpdatedMillis()).UTC()}
	if s := tbl.CurrentSnapshot(); s != nil {
		it.SnapshotID = &s.SnapshotID
		if s.Summary != nil {
			it.Rows = propInt(s.Summary.Properties, "total-records")
			it.Files = propInt(s.Summary.Properties, "total-data-files")
			it.Bytes = propInt(s.Summary.Properties, "total-files-size")
		}
	}
	return it
}

// lastChange walks back from the current snapshot to the last append.
func lastChange(tbl *table.Table) *Change {
	md := tbl.Metadata()
	for s := md.CurrentSnapshot(); s != nil; {
		if s.Summary != nil && s.Summary.Operation == table.OpAppend {
			return &Change{Time: time.UnixMilli(s.TimestampMs).UTC(), LSN: propUint(s.Summary.Properties, lakeformat.PropSourceLSN), SnapshotID: s.SnapshotID}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = md.SnapshotByID(*s.ParentSnapshotID)
	}
	return nil
}

// Snapshots lists a table's Iceberg snapshots, oldest first. kind is
// "changelog" or "snapshot" (the current-state table; the default).
func (r *Reader) Snapshots(ctx context.Context, ref TableRef, kind string) ([]Snapshot, error) {
	lt, err := r.find(ctx, ref)
	if err != nil {
		return nil, err
	}
	id := lt.snapshot
	if kind == "changelog" {
		id = lt.changelog
	}
	tbl, err := r.load(ctx, id)
	if err != nil || tbl == nil {
		return []Snapshot{}, err
	}
	md := tbl.Metadata()
	var current int64
	if s := md.CurrentSnapshot(); s != nil {
		current = s.SnapshotID
	}
	out := []Snapshot{}
	for _, s := range md.Snapshots() {
		sn := Snapshot{ID: s.SnapshotID, ParentID: s.ParentSnapshotID, SequenceNumber: s.SequenceNumber,
			Time: time.UnixMilli(s.TimestampMs).UTC(), SchemaID: s.SchemaID, Current: s.SnapshotID == current}
		if s.Summary != nil {
			p := s.Summary.Properties
			sn.Operation = string(s.Summary.Operation)
			sn.WatermarkLSN = propUint(p, lakeformat.PropSourceLSN)
			sn.Files, sn.Rows = propIntPtr(p, "total-data-files"), propIntPtr(p, "total-records")
			sn.AddedFiles, sn.AddedRows = propIntPtr(p, "added-data-files"), propIntPtr(p, "added-records")
		}
		out = append(out, sn)
	}
	slices.SortStableFunc(out, func(a, b Snapshot) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.SequenceNumber, b.SequenceNumber))
	})
	return out, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func propUint(p map[string]string, key string) *uint64 {
	v, err := strconv.ParseUint(p[key], 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

func propInt(p map[string]string, key string) int64 {
	v, _ := strconv.ParseInt(p[key], 10, 64)
	return v
}

func propIntPtr(p map[string]string, key string) *int64 {
	v, err := strconv.ParseInt(p[key], 10, 64)
	if err != nil {
		return nil
	}
	return &v
}
