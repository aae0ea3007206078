#!/usr/bin/env bash
# Installs agentlab's worker on a host as a systemd service: the built package in /opt/agentlab, config
# in /etc/agentlab (kept if present), data in /var/lib/agentlab, run by the `node` on PATH, which must be
# Node 24 (the active LTS; .node-version names the release the suite tests). --dry-run prints the steps.
set -euo pipefail

usage() {
  echo "usage: $0 [--prefix /opt/agentlab] [--config-dir /etc/agentlab] [--data-dir /var/lib/agentlab] [--dry-run]" >&2
  exit 2
}

prefix="/opt/agentlab"
config_dir="/etc/agentlab"
data_dir="/var/lib/agentlab"
dry_run=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="${2:?}"; shift ;;
    --config-dir) config_dir="${2:?}"; shift ;;
    --data-dir) data_dir="${2:?}"; shift ;;
    --dry-run) dry_run=true ;;
    *) usage ;;
  esac
  shift
done
for dir in "$prefix" "$config_dir" "$data_dir"; do
  [[ "$dir" == /* ]] || { echo "directories must be absolute, got \"$dir\"" >&2; exit 2; }
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The unit names this binary, and its npm installs the dependencies: no end-of-life Node on a host.
node_major="$(<"$root/.node-version")"
node_major="${node_major%%.*}"
node="$(command -v node || true)"
node_version=""
[[ -z "$node" ]] || node_version="$("$node" --version)"
if [[ "$node_version" != "v$node_major."* ]]; then
  echo "the worker runs on Node $node_major (the active LTS); found ${node:-no node on PATH}${node_version:+ ($node_version)}." >&2
  echo "  Install Node $node_major (Node's official tarball, or NodeSource's node_$node_major.x packages) and put it first on PATH." >&2
  exit 1
fi

run() {
  if $dry_run; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

$dry_run && echo "# the worker's Node: $node ($node_version)"
if ! $dry_run; then
  [[ "$(id -u)" == 0 ]] || { echo "run as root: the worker manages namespaces, nftables and VMs" >&2; exit 1; }
  [[ -f "$root/dist/worker/main.js" ]] || { echo "build first: npm ci && npm run build" >&2; exit 1; }
fi

run install -d -m 0755 "$prefix"
run cp -a "$root/package.json" "$root/package-lock.json" "$root/dist" "$root/guest" "$root/scripts" "$root/examples" "$prefix/"
run npm ci --omit=dev --no-audit --no-fund --prefix "$prefix"
run install -d -m 0700 "$config_dir" "$data_dir"
if [[ ! -f "$config_dir/config.yaml" ]]; then
  if $dry_run; then
    echo "write $config_dir/config.yaml (mode 0600, dataDir: $data_dir)"
  else
    umask 077
    printf '# agentlab worker config: see README.md, "Configuration".\ndataDir: %s\n' "$data_dir" >"$config_dir/config.yaml"
  fi
fi
unit="[Unit]
Description=agentlab worker (Temporal workflows, sandbox backends, guest API)
After=network-online.target
Wants=network-online.target

[Service]
Environment=AGENTLAB_CONFIG=$config_dir/config.yaml
ExecStart=$node $prefix/dist/worker/main.js
Restart=on-failure
RestartSec=5
# Graceful shutdown: the worker drains for its shutdownGraceTime before exiting.
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target"
if $dry_run; then
  echo "write /etc/systemd/system/agentlab-worker.service:"
  echo "$unit"
else
  echo "$unit" >/etc/systemd/system/agentlab-worker.service
fi
run systemctl daemon-reload
run systemctl enable --now agentlab-worker.service
