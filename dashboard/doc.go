// Package dashboard is cdclake's live monitoring page, served from the
// binary at / of `cdclake serve`.
//
// The page (assets/, embedded with go:embed: plain HTML, CSS and
// JavaScript, and the uPlot chart library as npm ships it) polls the same
// /v1 API that scripts use, with the bearer token a person typed into its
// login field (kept in sessionStorage): sources and tables from the
// catalog service (/v1/sources, /v1/tables), checks (/v1/checks), KPIs
// (/v1/kpis). Server adds the two routes the page needs that no other
// package serves: the stored results of a KPI over time
// (GET /v1/kpis/{name}/history, read from the lake's kpi/<name>/ Parquet
// files) and rows written per source over time (GET /v1/throughput, from
// the changelogs' Iceberg snapshots). Public tells which paths hold only
// the static page, so the token guard can let a browser load it.
package dashboard
