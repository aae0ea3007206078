#!/usr/bin/env bash
# Makes `npm run demo`, `npm test` and `npm run lint` work from a fresh clone: installs whatever is
# missing of the host packages (scripts/host-packages.txt; with apt-get, as root), the npm dependencies,
# the pinned Temporal CLI and, for the tests, the pinned Node 24 (`npm run test:node24`). Changes nothing
# and needs no network when everything is there.
# Usage: scripts/ensure-deps.sh [--for demo|test|cluster|qemu|lint]  (demo, the default, also serves the
# worker; test adds what the test suite runs; cluster what `npm run test:cluster` adds to that; qemu what
# building and booting the QEMU guest image adds to demo (`npm run test:qemu`);
# lint needs the npm dependencies alone). --host-only installs the host packages and nothing else: for a
# script that runs after `npm run setup` and must not reinstall node_modules (the qemu demo).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage="usage: scripts/ensure-deps.sh [--for demo|test|cluster|qemu|lint] [--host-only]"
purpose=demo
host_only=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --for) [[ $# -ge 2 ]] || { echo "--for expects demo, test, cluster, qemu or lint; $usage" >&2; exit 2; }; purpose="$2"; shift 2 ;;
    --for=*) purpose="${1#--for=}"; shift ;;
    --host-only) host_only=true; shift ;;
    *) echo "unexpected argument '$1'; $usage" >&2; exit 2 ;;
  esac
done
case "$purpose" in
  demo | test | cluster | qemu | lint) ;;
  *) echo "--for expects demo, test, cluster, qemu or lint, got '$purpose'" >&2; exit 2 ;;
esac

# Prints "package command" for each host package whose command is missing.
missing_host_packages() {
  local who command package
  while read -r who command package; do
    [[ -z "$who" || "$who" == \#* ]] && continue
    case "$who:$purpose" in
      demo:* | test:test | test:cluster | cluster:cluster | qemu:qemu) ;;
      *) continue ;;
    esac
    command -v "$command" >/dev/null || echo "$package $command"
  done <scripts/host-packages.txt
  # Debian splits venv's pip bootstrap out of python3; only the first install into .tools/ needs it.
  if [[ (-z "${TEMPORAL_CLI_PATH:-}" || "$purpose" == test || "$purpose" == cluster) && ! -x .tools/bin/pip ]] &&
    ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "python3-venv python3 -m venv"
  fi
}

# Sets packages (each once, in list order) and described ("bubblewrap (bwrap), iproute2 (ip, bridge)")
# from what missing_host_packages prints.
read_missing() {
  local -A commands=()
  local package command
  packages=()
  while read -r package command; do
    [[ -n "${commands[$package]+set}" ]] || packages+=("$package")
    commands[$package]+="${commands[$package]:+, }$command"
  done < <(missing_host_packages)
  described=""
  for package in "${packages[@]}"; do described+="${described:+, }$package (${commands[$package]})"; done
}

# Installs the missing host packages with apt-get as root; anywhere else names them and the command.
ensure_host_packages() {
  read_missing
  [[ ${#packages[@]} -eq 0 ]] && return 0
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing host packages: $described" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
    read_missing
    [[ ${#packages[@]} -eq 0 ]] || { echo "still missing after apt-get install: $described" >&2; exit 1; }
    return 0
  fi
  local sudo='' why='not running as root'
  [[ $EUID -eq 0 ]] || sudo='sudo '
  command -v apt-get >/dev/null || why='no apt-get on PATH (these are Debian/Ubuntu package names)'
  echo "missing host packages: $described" >&2
  echo "  install them with: ${sudo}apt-get install -y ${packages[*]}" >&2
  echo "  (not installed automatically: $why)" >&2
  exit 1
}

[[ "$purpose" == lint ]] || ensure_host_packages
$host_only && exit 0
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi
[[ "$purpose" == lint ]] || bash scripts/install-temporal.sh
[[ "$purpose" != test ]] || bash scripts/install-node24.sh
