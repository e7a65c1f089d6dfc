// Package ingest streams one PostgreSQL database's logical replication
// (pgoutput) into the lake's changelog tables, exactly once.
//
// The parts, in the order a change passes them:
//
//   - source.go checks the server, creates the publication and the slot;
//   - decode.go turns pgoutput messages into rows of per-table Arrow
//     builders (values decoded by package pgarrow), one row per change;
//   - stream.go receives messages, cuts the buffer into batches at
//     transaction boundaries (by rows, bytes or age) and answers keepalives;
//   - sink.go writes a batch: one Iceberg commit per touched table, then
//     the source watermark in the catalog.
//
// Only after the sink returns is the watermark acknowledged to PostgreSQL
// as the slot's flush position, so a crash at any point replays changes
// that the lake may already hold; the sink drops those by comparing their
// commit LSN with each table's committed LSN. See docs/architecture.md.
package ingest
