#!/usr/bin/env bash
# Makes `npm test` and `npm run demo` work from a fresh clone: installs npm dependencies when missing
# or stale, and the pinned Temporal CLI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi
bash scripts/install-temporal.sh
