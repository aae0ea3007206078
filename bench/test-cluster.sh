#!/usr/bin/env bash
# `npm run test:cluster`: the core scenarios (test/cluster/) against a real multi-service Temporal cluster on
# Debian's PostgreSQL. Installs what is missing (as `npm test` does, plus PostgreSQL), builds the Temporal server
# from its Go module once (scripts/build-temporal-server.sh), then runs the suites and prints how long each took.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/ensure-deps.sh --for cluster
started=$SECONDS
server_dir="$(bash scripts/build-temporal-server.sh)"
build_seconds=$((SECONDS - started))
npm run build --silent
started=$SECONDS
AGENTLAB_TEMPORAL_SERVER_DIR="$server_dir" npx jest --config jest.cluster.config.js --runInBand "$@"
echo "test:cluster: Temporal server build (or cache check) ${build_seconds} s, suites $((SECONDS - started)) s" >&2
