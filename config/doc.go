// Package config reads the file of `cdclake run --config cdclake.yaml`: the
// lake, the catalog, the PostgreSQL sources and the settings of compaction,
// serving, KPIs and checks. docs/configuration.md describes every key.
//
// The parts:
//
//   - config.go holds the Config types, Load and Parse, the defaults and
//     Source.IngestOptions;
//   - schema.go lists the keys of each section and what each value must
//     be, and checks what spans several keys (unique source names, a
//     catalog for an s3:// lake);
//   - decode.go walks the YAML node tree (go.yaml.in/yaml/v3) key by key,
//     so every error names the key's path and line; it rejects unknown
//     keys with a suggestion, follows aliases and merge keys (<<) within
//     bounds, and parses durations, sizes and counts;
//   - expand.go expands ${VAR}, ${VAR:-default} and $$ in values and finds
//     passwords written in the file instead of coming from ${VAR}.
//
// Errors are one line each, as "path: problem (line N)", and Parse returns
// all it finds, joined. Values from the environment are never shown in an
// error (the reference as written is shown instead), nor are database
// URLs, so no message carries a secret.
//
// Why a hand-written decoder and not tagged structs (decided for issue
// 22): decoding into structs with yaml.v3's Decoder.KnownFields(true)
// plus a validation pass was tried on a sample file. It would save a few
// hundred lines (decode.go's node walk), but its errors say less and can
// leak: they name Go types instead of key paths ("line 8: field
// intervall not found in type config.comp" for compaction.intervall),
// suggest nothing for a misspelt key, and quote the value that failed
// ("cannot unmarshal !!str `hunter2...` into int"), which after ${VAR}
// expansion is a value from the environment. Getting paths, suggestions
// and redaction back means walking the nodes again, which is what
// decode.go does; sizes ("128MiB") and counts need custom types either
// way. So the hand-written decoder stays: the keys of each section are
// listed once in schema.go, next to what their values must be.
package config
