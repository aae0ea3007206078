#!/usr/bin/env bash
# Runs a command under the pinned Node 24 (`npm run test:node24` runs `npm test` with it): installs it
# when missing (scripts/install-node24.sh) and puts its bin directory first on PATH, so npm, Jest, the
# build, every worker and CLI the tests spawn (process.execPath) and the sandboxes' `node` are Node 24.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -gt 0 ]] || { echo "usage: bench/with-node24.sh COMMAND [ARG...]" >&2; exit 2; }

bash "$root/scripts/install-node24.sh"
export PATH="$root/.tools/node24/bin:$PATH"
# The suite's global setup refuses to run under any other Node when this is set.
AGENTLAB_TEST_NODE_VERSION="v$(<"$root/.node-version")"
export AGENTLAB_TEST_NODE_VERSION
echo "under Node $(node --version) ($(command -v node)): $*" >&2
exec "$@"
