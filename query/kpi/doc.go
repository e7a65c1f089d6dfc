// Package kpi runs named KPI queries on a schedule.
//
// A KPI is a .sql file in the KPI folder (default ./kpis): one SELECT,
// headed by comments such as
//
//	-- schedule: 1m
//	-- description: orders placed per hour, last 48 hours
//
// Load and Parse read the folder (pure parsing, table-tested). Runner
// evaluates each KPI at start and then on its schedule with a
// query.Querier, writes every result as Parquet into the lake under
// kpi/<name>/run=<UTC time>/result.parquet (ResultKey) for the warehouse
// to pull, and keeps the latest result for the HTTP API (Register):
// GET /v1/kpis, GET /v1/kpis/{name}, POST /v1/kpis/{name}/run. A failed
// run keeps the previous result and reports the error.
package kpi
