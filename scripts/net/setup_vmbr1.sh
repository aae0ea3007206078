#!/usr/bin/env bash
# Creates the sandbox bridge (vmbr1 on Proxmox, agentlab0 for the local backend), idempotently:
# a bridge with the gateway address, IPv6 off, no ports yet. --dry-run prints the commands.
set -euo pipefail

usage() {
  echo "usage: $0 (--dry-run | --apply) [--bridge vmbr1] [--address 10.77.0.1/16]" >&2
  exit 2
}

mode=""
bridge="vmbr1"
address="10.77.0.1/16"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) mode="dry-run" ;;
    --apply) mode="apply" ;;
    --bridge) bridge="${2:?}"; shift ;;
    --address) address="${2:?}"; shift ;;
    *) usage ;;
  esac
  shift
done
[[ -n "$mode" ]] || usage
[[ "$bridge" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || { echo "--bridge: invalid interface name \"$bridge\"" >&2; exit 2; }
[[ "$address" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || { echo "--address: expected a.b.c.d/n" >&2; exit 2; }

commands=()
ip link show "$bridge" >/dev/null 2>&1 || commands+=("ip link add $bridge type bridge")
ip -4 addr show dev "$bridge" 2>/dev/null | grep -q "inet $address " || commands+=("ip addr replace $address dev $bridge")
if [[ -e /proc/sys/net/ipv6/conf/$bridge/disable_ipv6 ]]; then
  [[ "$(cat "/proc/sys/net/ipv6/conf/$bridge/disable_ipv6")" == 1 ]] || commands+=("sysctl -qw net.ipv6.conf.$bridge.disable_ipv6=1")
else
  commands+=("sysctl -qw net.ipv6.conf.$bridge.disable_ipv6=1")
fi
ip link show "$bridge" 2>/dev/null | grep -q "state UP\|,UP" || commands+=("ip link set $bridge up")

if [[ ${#commands[@]} -eq 0 ]]; then
  echo "# $bridge is already set up" >&2
  exit 0
fi
for command in "${commands[@]}"; do
  if [[ "$mode" == "dry-run" ]]; then echo "$command"; else $command; fi
done
