#!/usr/bin/env bash
# Routes the agent subnet over Tailscale so operators on the tailnet can `ssh agent@<guest>` (agentlab
# sandbox ssh) from their own machines: advertises the subnet from this host and reloads the egress
# policy with the tailnet interface let in on port 22 only. Guests still cannot reach the host or the
# tailnet. Idempotent; --dry-run prints what --apply would do. Options after `--` go to apply.sh as they
# are (--bridge, --gateway, --uplink, --port-prefix…: the ruleset is rendered whole, so give the same ones).
set -euo pipefail

usage() {
  cat >&2 <<USAGE
usage: $0 (--dry-run | --apply) [--subnet 10.77.0.0/16] [--iface tailscale0] [--routes CIDR,…] [-- apply.sh options]
  --routes: every route this host advertises (tailscale replaces the list); default: the subnet alone.
USAGE
  exit 2
}

mode=""
subnet="10.77.0.0/16"
iface="tailscale0"
routes=""
apply_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) mode="dry-run" ;;
    --apply) mode="apply" ;;
    --subnet) subnet="${2:?}"; shift ;;
    --iface) iface="${2:?}"; shift ;;
    --routes) routes="${2:?}"; shift ;;
    --) shift; apply_args=("$@"); break ;;
    *) usage ;;
  esac
  shift
done
[[ -n "$mode" ]] || usage
[[ "$subnet" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || { echo "--subnet: expected a.b.c.d/n, got \"$subnet\"" >&2; exit 2; }
[[ "$iface" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || { echo "--iface: invalid interface name \"$iface\"" >&2; exit 2; }
routes="${routes:-$subnet}"
[[ "$routes" =~ ^(([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2},?)+$ ]] || { echo "--routes: expected CIDR[,CIDR…]" >&2; exit 2; }
[[ ",$routes," == *",$subnet,"* ]] || { echo "--routes: must include the agent subnet $subnet" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
advertise=(tailscale set "--advertise-routes=$routes")

if [[ "$mode" == "dry-run" ]]; then
  echo "${advertise[*]}"
  echo "# then approve the route $subnet for this machine in the tailnet's admin console"
  exec bash "$here/apply.sh" --dry-run --subnet "$subnet" --operator-iface "$iface" "${apply_args[@]}"
fi

command -v tailscale >/dev/null || { echo "tailscale not found: install Tailscale and run tailscale up first" >&2; exit 1; }
"${advertise[@]}"
bash "$here/apply.sh" --apply --subnet "$subnet" --operator-iface "$iface" "${apply_args[@]}"
echo "advertised $routes on the tailnet; approve $subnet for this machine in the admin console" >&2
