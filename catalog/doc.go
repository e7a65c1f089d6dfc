// Package catalog keeps the lake's metadata: the Iceberg tables (through
// iceberg-go's SQL catalog, in an embedded SQLite file or in PostgreSQL)
// and, in the same database, cdclake's own records such as each source's
// watermark: the LSN up to which every change of the source is committed
// to the lake.
//
// Ingest commits table snapshots first and the source watermark second,
// and acknowledges the watermark to PostgreSQL only after both; on restart
// it resumes from the watermark (see docs/architecture.md).
package catalog
