package compact

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/catalog"
	"github.com/cdclake/cdclake/lakeformat"
)

// ErrNoSnapshot is returned when a snapshot table has no snapshot at or
// below an LSN (none was compacted that early, or it expired).
var ErrNoSnapshot = errors.New("no snapshot at or below that LSN")

// SnapshotAt returns the newest snapshot of a snapshot table whose
// watermark is at or below lsn, and that watermark.
func SnapshotAt(tbl *table.Table, lsn uint64) (*table.Snapshot, uint64, error) {
	var best *table.Snapshot
	var bestLSN uint64
	for _, si := range snapshotInfos(tbl) {
		if si.LSN == 0 || si.LSN > lsn {
			continue
		}
		if best == nil || si.LSN > bestLSN || (si.LSN == bestLSN && si.Time.UnixMilli() > best.TimestampMs) {
			best, bestLSN = tbl.SnapshotByID(si.ID), si.LSN
		}
	}
	if best == nil {
		return nil, 0, fmt.Errorf("%w: %d", ErrNoSnapshot, lsn)
	}
	return best, bestLSN, nil
}

// ScanAt returns the scan options that read a snapshot table as its
// newest compaction at or below lsn left it, and that compaction's
// watermark W: the rows reflect every change with _cdc_lsn < W. Merge the
// changelog rows with W <= _cdc_lsn < lsn for the exact state at lsn, as
// StateAt does.
func ScanAt(tbl *table.Table, lsn uint64) ([]table.ScanOption, uint64, error) {
	s, w, err := SnapshotAt(tbl, lsn)
	if err != nil {
		return nil, 0, err
	}
	return []table.ScanOption{table.WithSnapshotID(s.SnapshotID)}, w, nil
}

// StateAt returns a source table's rows as they were once every change
// with _cdc_lsn < lsn was applied (the snapshot table's columns, sorted by
// primary key): the newest snapshot at or below lsn merged with the
// changelog rows after it. lsn beyond the changelog's watermark gives the
// newest state the lake knows. An lsn older than every snapshot kept is
// rebuilt from the whole changelog.
func StateAt(ctx context.Context, cat *catalog.Catalog, ref TableRef, lsn uint64) (arrow.RecordBatch, error) {
	cl, err := cat.Iceberg().LoadTable(ctx, lakeformat.ChangelogIdent(ref.Source, ref.Schema, ref.Name))
	if err != nil {
		return nil, fmt.Errorf("load changelog of %s: %w", ref, err)
	}
	keys := primaryKey(cl)
	if len(keys) == 0 {
		return nil, fmt.Errorf("state of %s: the changelog has no primary key", ref)
	}
	var base arrow.RecordBatch
	var from uint64
	var outSchema *arrow.Schema
	sn, err := cat.Iceberg().LoadTable(ctx, lakeformat.SnapshotIdent(ref.Source, ref.Schema, ref.Name))
	switch {
	case errors.Is(err, icecat.ErrNoSuchTable):
	case err != nil:
		return nil, fmt.Errorf("load snapshot table %s: %w", ref, err)
	default:
		if outSchema, err = table.SchemaToArrowSchema(sn.Schema(), nil, true, false); err != nil {
			return nil, err
		}
		opts, w, err := ScanAt(sn, lsn)
		if err == nil {
			if base, err = readAll(ctx, sn.Scan(opts...)); err != nil {
				return nil, fmt.Errorf("read snapshot of %s: %w", ref, err)
			}
			defer base.Release()
			from = w
		} else if !errors.Is(err, ErrNoSnapshot) {
			return nil, err
		}
	}
	if outSchema == nil { // no snapshot table: the changelog's source columns
		var fields []arrow.Field
		clSchema, err := table.SchemaToArrowSchema(cl.Schema(), nil, true, false)
		if err != nil {
			return nil, err
		}
		for _, f := range clSchema.Fields() {
			if !cdcColumns[f.Name] || f.Name == lakeformat.ColLSN {
				fields = append(fields, f)
			}
		}
		outSchema = arrow.NewSchema(fields, nil)
	}
	if cl.CurrentSnapshot() == nil {
		return emptyRecord(outSchema), nil
	}
	filter := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference(lakeformat.ColLSN), int64(from)),
		iceberg.LessThan(iceberg.Reference(lakeformat.ColLSN), int64(lsn)))
	changes, err := readAll(ctx, cl.Scan(table.WithRowFilter(filter)))
	if err != nil {
		return nil, fmt.Errorf("read changes of %s: %w", ref, err)
	}
	defer changes.Release()
	return applyChanges(ctx, outSchema, keys, base, changes)
}

// applyChanges applies a changelog record to a base record in memory.
func applyChanges(ctx context.Context, outSchema *arrow.Schema, keys []string, base, changes arrow.RecordBatch) (arrow.RecordBatch, error) {
	cs, err := newChangeSet(changes)
	if err != nil {
		return nil, err
	}
	names := make([]string, outSchema.NumFields())
	for i, f := range outSchema.Fields() {
		names[i] = f.Name
	}
	f, err := fold(cs, keys, names)
	if err != nil {
		return nil, err
	}
	bySlot := map[int][]arrow.RecordBatch{}
	if base != nil && !f.truncated {
		base.Retain() // newBaseSet takes it over
		bySlot[0] = []arrow.RecordBatch{base}
	}
	bs, err := newBaseSet(outSchema, keys, bySlot, f)
	if err != nil {
		return nil, err
	}
	defer bs.release()
	ks := make([]string, 0, len(f.keys))
	for k := range f.keys {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	so := buildSlot(bs, 0, ks, f, outSchema.NumFields())
	if err := bs.combine(ctx, outSchema, cs, []*slotOut{so}); err != nil {
		return nil, err
	}
	return so.record(ctx, outSchema, bs, 0, len(so.src))
}

func emptyRecord(sc *arrow.Schema) arrow.RecordBatch {
	rec, _ := concatRecords(sc, nil)
	return rec
}
