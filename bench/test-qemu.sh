#!/usr/bin/env bash
# `npm run test:qemu`: the QEMU guest image (docs/qemu-guest.md) built from Debian's packages, or taken from its
# cache, and booted through cloud-init to the guest runner; then a real job on the qemu backend (test/qemu/).
# Installs what is missing first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/ensure-deps.sh --for qemu
# The build first: the image carries the compiled guest runner (dist/guest). Then the image (cached unless its
# inputs changed): a worker whose qemu backend had to build it at start would not be ready within the tests' deadlines.
npm run build --silent
bash scripts/build-guest-image.sh >/dev/null
npx jest --config jest.qemu.config.js --runInBand "$@"
