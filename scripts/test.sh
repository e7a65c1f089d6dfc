#!/usr/bin/env bash
# The project's test command: installs what a fresh machine lacks
# (PostgreSQL server binaries, Chromium, Debian's psycopg2, the versitygw
# S3 server, Go modules), then
# runs every test, integration tests against real servers included.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${CDCLAKE_PG_BIN:-}" ]; then
  echo "test.sh: installing PostgreSQL 15 server binaries"
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 ||
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
fi

if ! command -v chromium >/dev/null 2>&1 && [ -z "${CDCLAKE_CHROMIUM:-}" ]; then
  echo "test.sh: installing Chromium (the dashboard tests drive it)"
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

if ! /usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1; then
  echo "test.sh: installing python3-psycopg2 (the pgwire tests drive it)"
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-psycopg2
fi

gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/versitygw" ]; then
  echo "test.sh: installing versitygw v1.8.0"
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
export CDCLAKE_VERSITYGW="$gobin/versitygw"

go mod download
# go.mod and go.sum must be tidy: direct requirements marked as such,
# nothing unused. `go mod tidy -diff` prints the edits tidy would make on
# stdout and exits 1 when there are any (on stderr it may report modules
# it downloads, which is no failure).
if ! tidy_diff="$(go mod tidy -diff)"; then
  echo "$tidy_diff"
  echo "test.sh: go.mod/go.sum are not tidy (or go mod tidy failed, above): run 'go mod tidy' and commit the result" >&2
  exit 1
fi
go vet -tags duckdb_arrow ./...
go test -tags duckdb_arrow -count=1 -timeout 40m "$@" ./...
