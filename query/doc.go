// Package query answers read-only SQL over the lake with an embedded
// DuckDB, and serves it over HTTP (Handler); package query/pgwire serves
// the same engine to PostgreSQL clients and query/kpi runs named KPI
// queries on a schedule.
//
// How the parts fit:
//
//   - Engine (engine.go) owns one in-memory DuckDB, locked down at Open:
//     files are readable only under the lake folder (or the S3 object
//     cache), extensions never load, the configuration is frozen, memory
//     and threads are bounded.
//   - Every query is first parsed by DuckDB itself (json_serialize_sql,
//     guard.go): exactly one SELECT passes, and the parse tree names the
//     tables the query reads. The prepared statement's type is checked
//     again before it runs, with a time limit that interrupts DuckDB.
//   - For each lake table a query names, ensure.go loads the Iceberg
//     metadata (views.go), plans the Parquet files with iceberg-go, and
//     (re)creates two views when the metadata changed: <table>__changes,
//     the changelog, and <table>, the current state merged on read from
//     the snapshot table and the changes at or after its watermark
//     (viewsql.go, pure SQL generation, table-tested). Views live in an
//     attached database per source (source.schema.table) and, when the
//     name is unique across sources, also as schema.table.
//   - Folder lakes are read in place. For S3 lakes, cache.go fetches
//     exactly the files a query needs through lake.BucketReader into a
//     local folder bounded by bytes (least recently used files go first;
//     files a running query may read are pinned).
//   - Results are Arrow record batches, written as JSON, CSV, an aligned
//     table, Parquet or Arrow IPC (format.go); Text formats single values
//     as PostgreSQL's text output does. Each result carries the freshness
//     (watermark LSN and commit time) of the sources it read.
package query
