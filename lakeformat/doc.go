// Package lakeformat is the lake's table format: the names, properties
// and schema rules of the Iceberg tables cdclake writes, which ingest,
// compact, query and the catalog service (catalog/rest) all read from
// here. A third party reading or writing the lake can rely on them;
// docs/compaction.md ("The snapshot table contract") and docs/query.md
// describe the same contract in prose.
//
// Each PostgreSQL table of a source has, in the catalog's namespace
// {source, schema}:
//
//   - a changelog table, ChangelogIdent: the table's name with
//     ChangesSuffix. Its columns are the source's columns (same names,
//     except after an incompatible type change: PropColumnNames) followed
//     by the metadata columns MetaFields: the operation ColOp (OpRead,
//     OpInsert, OpUpdate, OpDelete, OpTruncate), the commit's ColLSN, the
//     change's order in its transaction ColSeq, ColXID, ColCommitTS, and
//     ColUnchanged, the columns an update did not send (TOAST) which keep
//     their previous value. It is partitioned by the hour of
//     ColCommitTS; rows are ordered by (ColLSN, ColSeq).
//   - once compaction ran, a snapshot table, SnapshotIdent: the current
//     rows, the source's columns plus ColLSN (of the change that wrote
//     each row), complete up to its PropSourceLSN.
//
// Every level of an identifier is a PostgreSQL name encoded by
// IdentPart (decoded by NamePart), so any name is a valid
// Iceberg identifier. Both tables carry PropSourceLSN and PropPrimaryKey;
// the changelog also PropPGTypes, PropColumnNames, PropColumnDefaults and,
// for a partitioned source table, PropPartitions; the snapshot table
// PropChangelogFieldIDs. Readers merge a snapshot with the changes at or
// after its PropSourceLSN (per key, the last change wins; a delete
// removes the row).
package lakeformat
