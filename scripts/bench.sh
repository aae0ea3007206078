#!/usr/bin/env bash
# `npm run bench`: runs the benchmarks in a network namespace of their own (the local backend's bridge
# and ruleset never touch this machine's network), then removes it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ns="agentlab-bench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" node "$root/dist/scripts/bench-local.js"
node "$root/dist/scripts/bench-list.js"
