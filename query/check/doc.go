// Package check evaluates business checks: named SQL queries that return
// the rows breaking a rule.
//
// A check is a .sql file of the check folder (default ./checks): one
// SELECT, headed by comments in the KPI files' format:
//
//	-- schedule: 30s
//	-- threshold: 0
//	-- description: paid orders not shipped within 10 minutes
//	SELECT ... -- one row per violation
//
// The check is failing while it returns more rows than its threshold.
// Load and Parse read the folder (pure parsing, table-tested). Runner
// evaluates every check at start and then on its schedule with a
// query.Querier; a check may read cdclake_sources, a relation of the
// sources' watermarks and lag that the runner puts in front of the SQL
// (sources.go), so source freshness is a check like any other. Each run
// updates the check's State (ok or failing since when, the number of
// violating rows, a sample of them), the Prometheus gauges of Metrics (cdclake_check_failing and
// cdclake_check_violations, labelled by check, for Alertmanager),
// and is written as Parquet into the lake under
// checks/<name>/run=<UTC time>/result.parquet (ResultKey). Register serves
// GET /v1/checks, GET /v1/checks/{name} and POST /v1/checks/{name}/run.
package check
