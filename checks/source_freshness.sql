-- schedule: 30s
-- threshold: 0
-- description: sources with nothing new in the lake for more than 5 minutes (stuck, or idle)
-- cdclake_sources is provided by the check runner (docs/monitoring.md).
-- Give a source its own limit with a CASE on source.
SELECT source,
       round(lag_seconds) AS lag_seconds,
       complete_through,
       updated_at
FROM cdclake_sources
WHERE lag_seconds > 300
ORDER BY source
