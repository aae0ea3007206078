#!/usr/bin/env bash
# `npm run bench`: the local backend's benchmark runs in a network namespace of its own (its bridge and
# ruleset never touch this machine's network); the job-list and Proxmox benchmarks run their own dev server
# on loopback (the Proxmox one against the simulator, whose guests need no network namespace).
# `npm run bench -- chaos [--n N] [--json]` runs only the chaos run (Proxmox simulator, on loopback).
# `npm run bench -- jobs [--n N] [--agent-seconds S] [--admission all|host] [--sandbox-cores C]
# [--sandbox-memory-mb M] [--json]` runs only the whole-job benchmark (in its own network namespace too). nsenter, not `ip netns exec`: the latter mounts a fresh /sys without the cgroup
# filesystem the job benchmark accounts CPU with. `npm run bench -- leases [--n N] [--ttl D] [--renew-ttl D] [--json]`
# runs only the leases benchmark (bare sandboxes on the Proxmox simulator, all on loopback: no namespace needed).
# `npm run bench -- qemu [--n N] [--json]` runs only the qemu backend's (real VMs; in its own namespace too).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The leases and chaos runs need no namespace: all they run is on loopback.
if [[ "${1:-}" == leases ]]; then
  shift
  exec node "$root/dist/bench/bench-leases.js" "$@"
fi
if [[ "${1:-}" == chaos ]]; then
  shift
  exec node "$root/dist/bench/bench-chaos.js" "$@"
fi
ns="agentlab-bench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
if [[ "${1:-}" == qemu ]]; then
  shift
  ip netns exec "$ns" node "$root/dist/bench/bench-qemu.js" "$@"
  exit
fi
if [[ "${1:-}" == jobs ]]; then
  shift
  nsenter --net="/run/netns/$ns" node "$root/dist/bench/bench-jobs.js" "$@"
  exit
fi
ip netns exec "$ns" node "$root/dist/bench/bench-local.js"
node "$root/dist/bench/bench-list.js"
node "$root/dist/bench/bench-proxmox.js"
node "$root/dist/bench/bench-redact.js"
