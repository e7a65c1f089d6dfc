package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/cdclake/cdclake/lakeformat"
)

var cdcColumns = []string{lakeformat.ColOp, lakeformat.ColLSN, lakeformat.ColSeq, lakeformat.ColXID, lakeformat.ColCommitTS, lakeformat.ColUnchanged}

// Schema returns a table's current schema with PostgreSQL and lake types,
// and every schema the table has had. The changelog's schemas are used
// (the snapshot table's when there is no changelog).
func (r *Reader) Schema(ctx context.Context, ref TableRef) (Schema, error) {
	lt, err := r.find(ctx, ref)
	if err != nil {
		return Schema{}, err
	}
	id := lt.changelog
	if id == nil {
		id = lt.snapshot
	}
	tbl, err := r.load(ctx, id)
	if err != nil {
		return Schema{}, err
	}
	if tbl == nil {
		return Schema{}, fmt.Errorf("table %s: %w", ref, ErrNotFound)
	}
	sourceNames := map[string]string{} // lake name -> source name
	var lakeNames map[string]string    // source name -> lake name
	_ = json.Unmarshal([]byte(tbl.Properties()[lakeformat.PropColumnNames]), &lakeNames)
	for src, lk := range lakeNames {
		sourceNames[lk] = src
	}
	pgTypes := map[string]string{}
	_ = json.Unmarshal([]byte(tbl.Properties()[lakeformat.PropPGTypes]), &pgTypes)

	md := tbl.Metadata()
	cur := md.CurrentSchema()
	out := Schema{Source: ref.Source, Schema: ref.Schema, Table: ref.Table, SchemaID: cur.ID,
		Columns: columns(cur, sourceNames, pgTypes), History: []SchemaVersion{}}
	schemas := md.Schemas()
	slices.SortFunc(schemas, func(a, b *iceberg.Schema) int { return a.ID - b.ID })
	var prev *iceberg.Schema
	for _, sc := range schemas {
		v := SchemaVersion{SchemaID: sc.ID, Current: sc.ID == cur.ID, Changes: schemaChanges(prev, sc),
			Columns: columns(sc, sourceNames, pgTypes)}
		if first := firstSnapshot(md, sc.ID); first != nil {
			t := time.UnixMilli(first.TimestampMs).UTC()
			v.Since = &t
			if first.Summary != nil {
				v.SinceLSN = propUint(first.Summary.Properties, lakeformat.PropSourceLSN)
			}
		}
		out.History = append(out.History, v)
		prev = sc
	}
	return out, nil
}

// firstSnapshot returns the oldest retained snapshot written with a schema.
func firstSnapshot(md table.Metadata, schemaID int) *table.Snapshot {
	var first *table.Snapshot
	for _, s := range md.Snapshots() {
		if s.SchemaID != nil && *s.SchemaID == schemaID && (first == nil || s.TimestampMs < first.TimestampMs) {
			first = &s
		}
	}
	return first
}

func columns(sc *iceberg.Schema, sourceNames, pgTypes map[string]string) []Column {
	out := []Column{}
	for _, f := range sc.Fields() {
		c := Column{ID: f.ID, Name: f.Name, LakeType: f.Type.String(), Required: f.Required, CDC: slices.Contains(cdcColumns, f.Name)}
		if !c.CDC {
			src := f.Name
			if s, ok := sourceNames[f.Name]; ok {
				src = s
			}
			c.SourceName = &src
			if t, ok := pgTypes[src]; ok {
				c.PGType = &t
			} else {
				t := inferPGType(f.Type)
				c.PGType, c.PGTypeInferred = &t, true
			}
		}
		out = append(out, c)
	}
	return out
}

// inferPGType names the PostgreSQL type a lake type most likely came from
// (see the type mapping in docs/architecture.md); strings stand for every
// type cdclake stores as text.
func inferPGType(t iceberg.Type) string {
	switch t := t.(type) {
	case iceberg.BooleanType:
		return "boolean"
	case iceberg.Int32Type:
		return "integer"
	case iceberg.Int64Type:
		return "bigint"
	case iceberg.Float32Type:
		return "real"
	case iceberg.Float64Type:
		return "double precision"
	case iceberg.DecimalType:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision(), t.Scale())
	case iceberg.BinaryType, iceberg.FixedType:
		return "bytea"
	case iceberg.UUIDType:
		return "uuid"
	case iceberg.DateType:
		return "date"
	case iceberg.TimeType:
		return "time"
	case iceberg.TimestampType:
		return "timestamp"
	case iceberg.TimestampTzType:
		return "timestamptz"
	case *iceberg.ListType:
		return inferPGType(t.Element) + "[]"
	}
	return "text"
}

// schemaChanges describes what changed from prev to sc, by field id.
func schemaChanges(prev, sc *iceberg.Schema) []string {
	if prev == nil {
		return []string{"created"}
	}
	out := []string{}
	for _, f := range sc.Fields() {
		p, ok := prev.FindFieldByID(f.ID)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("added %s %s", f.Name, f.Type))
		case p.Name != f.Name:
			out = append(out, fmt.Sprintf("renamed %s to %s", p.Name, f.Name))
		}
		if ok && p.Type.String() != f.Type.String() {
			out = append(out, fmt.Sprintf("changed %s from %s to %s", f.Name, p.Type, f.Type))
		}
	}
	for _, p := range prev.Fields() {
		if _, ok := sc.FindFieldByID(p.ID); !ok {
			out = append(out, "dropped "+p.Name)
		}
	}
	if len(out) == 0 {
		out = append(out, "no column changes")
	}
	return out
}
