#!/usr/bin/env bash
# Builds the Temporal server and its SQL schema tool from the Go module go.temporal.io/server, at the
# version docker-compose.yml runs (one pin for both), into .tools/temporal-server/<version>/, once.
# Prints their directory on stdout (how long the build took on stderr). Idempotent: a finished build is reused.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The compose file's server image is the pin: `temporalio/server:1.31.0` → v1.31.0.
version="v$(sed -n 's/^ *image: temporalio\/server:\([0-9.]*\)$/\1/p' "$root/docker-compose.yml" | head -n 1)"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || {
  echo "build-temporal-server: no temporalio/server:<version> image in docker-compose.yml" >&2
  exit 1
}
dest="$root/.tools/temporal-server/$version"

if [[ -x "$dest/temporal-server" && -x "$dest/temporal-sql-tool" ]]; then
  echo "temporal server $version: $dest (cached)" >&2
  echo "$dest"
  exit 0
fi
command -v go >/dev/null || {
  echo "build-temporal-server: the go command is needed to build the Temporal server" >&2
  exit 1
}

started=$SECONDS
work="$dest.partial"
rm -rf "$work"
mkdir -p "$work"
# `go install module@version` builds exactly the published module (its go.sum, no local go.mod).
# CGO off: the server's SQL drivers are pure Go, and a static binary runs on any host.
GOBIN="$work" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go install "go.temporal.io/server/cmd/server@$version" "go.temporal.io/server/cmd/tools/sql@$version"
mv "$work/server" "$work/temporal-server"
mv "$work/sql" "$work/temporal-sql-tool"
rm -rf "$dest"
mv "$work" "$dest"
echo "temporal server $version: built in $((SECONDS - started)) s into $dest" >&2
echo "$dest"
