// Package rest is cdclake's catalog service: the HTTP face of the lake's
// metadata. New builds a Server that serves
//
//   - /v1/...: JSON for people and scripts (sources and their lag, tables,
//     schemas and their history, snapshots, the hour partitions of each
//     changelog with a closed flag, and the file manifest of a partition:
//     the warehouse pull contract of docs/warehouse-pull.md). docs/openapi.yaml
//     describes it; a test checks the server against it.
//   - /iceberg/v1/...: the read side of the Apache Iceberg REST Catalog
//     protocol, so Spark, Trino, PyIceberg and iceberg-go can attach.
//   - /metrics (Prometheus), /healthz (always 200, no token) and /readyz
//     (the catalog answers).
//
// How the parts fit: Reader reads the catalog and the lake and returns
// plain structs (types.go): sources and tables in reader.go, schemas in
// schema.go, partitions and manifests in partitions.go. It is also what
// `cdclake status` prints. Closed (closed.go) is the pull contract's rule,
// on metadata only; WALTracker (caughtup.go) lets an idle source's hours
// close. The v1 handlers (v1.go) and the Iceberg handlers (iceberg.go)
// turn Reader answers into JSON; server.go routes, checks the bearer token
// and counts requests (metrics.go, which also exports catalog gauges).
// Checksums of data files are SHA-256 of the object bytes, computed on
// first request and cached in memory (checksum.go); LSN ranges come from
// Iceberg column bounds, or from the Parquet footer when a file has none
// (files.go).
package rest
