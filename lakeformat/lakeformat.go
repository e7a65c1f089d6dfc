package lakeformat

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Change operations, the values of the ColOp column.
const (
	OpRead     = "r" // a row copied by a snapshot (initial or reload)
	OpInsert   = "c"
	OpUpdate   = "u"
	OpDelete   = "d" // key columns only; the others are listed in ColUnchanged
	OpTruncate = "t"
)

// Metadata columns every changelog row carries after the source columns.
const (
	ColOp        = "_cdc_op"
	ColLSN       = "_cdc_lsn"
	ColSeq       = "_cdc_seq"
	ColXID       = "_cdc_xid"
	ColCommitTS  = "_cdc_commit_ts"
	ColUnchanged = "_cdc_unchanged"
	// MetaPrefix begins the name of every metadata column; no source
	// column is read under a name that starts with it.
	MetaPrefix = "_cdc_"
)

// MetaFields returns the Arrow fields of the metadata columns, in their
// order after the source columns.
func MetaFields() []arrow.Field {
	return []arrow.Field{
		{Name: ColOp, Type: arrow.BinaryTypes.String, Nullable: false},
		{Name: ColLSN, Type: arrow.PrimitiveTypes.Int64, Nullable: false},
		{Name: ColSeq, Type: arrow.PrimitiveTypes.Int64, Nullable: false},
		{Name: ColXID, Type: arrow.PrimitiveTypes.Int64, Nullable: false},
		{Name: ColCommitTS, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: false},
		{Name: ColUnchanged, Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	}
}

// Table properties.
const (
	// PropSourceLSN is the source watermark of the table's last commit:
	// every change with a commit LSN below it is in the table. On a
	// snapshot table it is the watermark W (changelog rows with ColLSN <
	// W applied, none at or after it), also a key of every compaction
	// snapshot's summary.
	PropSourceLSN = "cdclake.source-lsn"
	// PropPrimaryKey is the JSON list of the source table's key columns.
	PropPrimaryKey = "cdclake.primary-key"
	// PropPGTypes is the JSON object of the source columns' PostgreSQL
	// types, {"column": "numeric(10,2)"}.
	PropPGTypes = "cdclake.pg-types"
	// PropColumnNames maps source column names to lake column names where
	// they differ (after incompatible type changes), as a JSON object.
	PropColumnNames = "cdclake.column-names"
	// PropColumnDefaults records, per lake column, the value PostgreSQL
	// gave the rows that predate the column, as a JSON object of
	// ColumnDefault.
	PropColumnDefaults = "cdclake.column-defaults"
	// PropPartitions is the JSON list of the leaf partitions a partitioned
	// table's changelog was last copied from.
	PropPartitions = "cdclake.partitions"
	// PropChangelogFieldIDs is the snapshot table property mapping its
	// field ids to the changelog's field ids, as a JSON object
	// {"snapshot id": changelog id}.
	PropChangelogFieldIDs = "cdclake.changelog-field-ids"
)

// ColumnDefault is the value of a column added with a constant default
// (ALTER TABLE ... ADD COLUMN ... DEFAULT): PostgreSQL gives it to every
// existing row without writing them, so no change carries it. A row whose
// (_cdc_lsn, _cdc_seq) is before (LSN, Seq), the first change written
// with the column, predates the column and reads Value instead of what it
// holds; every later row carries its own value (NULL included).
type ColumnDefault struct {
	// Value is the default as Arrow writes it in JSON (array.FromJSON
	// reads it back): true, 7, "text", "2026-03-01T00:00:00Z", "1.50".
	Value json.RawMessage `json:"value"`
	LSN   int64           `json:"lsn"`
	Seq   int64           `json:"seq"`
}

// ColumnDefaults reads a table's PropColumnDefaults (by lake column name).
func ColumnDefaults(props iceberg.Properties) (map[string]ColumnDefault, error) {
	out := map[string]ColumnDefault{}
	if v := props[PropColumnDefaults]; v != "" {
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, fmt.Errorf("read %s: %w", PropColumnDefaults, err)
		}
	}
	return out, nil
}

// ChangesSuffix ends the name of every changelog table.
const ChangesSuffix = "__changes"

// ChangelogIdent returns the Iceberg identifier of a source table's
// changelog.
func ChangelogIdent(source, schema, name string) table.Identifier {
	return table.Identifier{IdentPart(source), IdentPart(schema), IdentPart(name + ChangesSuffix)}
}

// SnapshotIdent returns the Iceberg identifier of a source table's
// snapshot table.
func SnapshotIdent(source, schema, name string) table.Identifier {
	return table.Identifier{IdentPart(source), IdentPart(schema), IdentPart(name)}
}
