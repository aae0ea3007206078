#!/usr/bin/env bash
# Installs agentlab's sandbox egress policy (agentlab.nft.tmpl) for one bridge, idempotently.
# --dry-run prints the rendered ruleset and what would change; --apply loads it and enables forwarding.
set -euo pipefail

usage() {
  cat >&2 <<USAGE
usage: $0 (--dry-run | --apply) [--bridge vmbr1] [--subnet 10.77.0.0/16] [--gateway 10.77.0.1]
          [--guest-api-port 8844] [--uplink IFACE] [--port-prefix alv] [--operator-iface IFACE]
  --operator-iface: connections routed in on IFACE (e.g. tailscale0) may reach guests on port 22.
USAGE
  exit 2
}

mode=""
bridge="vmbr1"
subnet="10.77.0.0/16"
gateway=""
guest_api_port="8844"
uplink=""
port_prefix=""
operator_iface=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) mode="dry-run" ;;
    --apply) mode="apply" ;;
    --bridge) bridge="${2:?}"; shift ;;
    --subnet) subnet="${2:?}"; shift ;;
    --gateway) gateway="${2:?}"; shift ;;
    --guest-api-port) guest_api_port="${2:?}"; shift ;;
    --uplink) uplink="${2:?}"; shift ;;
    --port-prefix) port_prefix="${2:?}"; shift ;;
    --operator-iface) operator_iface="${2:?}"; shift ;;
    *) usage ;;
  esac
  shift
done
[[ -n "$mode" ]] || usage
[[ "$bridge" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || { echo "--bridge: invalid interface name \"$bridge\"" >&2; exit 2; }
[[ "$subnet" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || { echo "--subnet: expected a.b.c.d/n, got \"$subnet\"" >&2; exit 2; }
[[ "$guest_api_port" =~ ^[0-9]{1,5}$ ]] || { echo "--guest-api-port: expected a port number" >&2; exit 2; }
if [[ -z "$gateway" ]]; then
  # The first address of the subnet, as setup_vmbr1.sh assigns it.
  IFS=./ read -r a b c d _ <<<"$subnet"
  gateway="$a.$b.$c.$((d + 1))"
fi
[[ "$gateway" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || { echo "--gateway: expected an IPv4 address" >&2; exit 2; }
uplink_match='oifname != "'"$bridge"'"'
if [[ -n "$uplink" ]]; then
  [[ "$uplink" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || { echo "--uplink: invalid interface name" >&2; exit 2; }
  uplink_match='oifname "'"$uplink"'"'
fi

[[ -z "$port_prefix" || "$port_prefix" =~ ^[A-Za-z0-9_-]{1,8}$ ]] || { echo "--port-prefix: expected up to 8 letters or digits" >&2; exit 2; }
# Operators routed in (sandbox ssh from a tailnet): new connections to port 22 only, and the guests'
# answers to exactly those (the reply direction of a connection the other side opened), even to the
# private and CGNAT ranges a guest may not open connections to. Nothing a guest starts changes.
operator_replies="# no operator route (apply.sh --operator-iface)"
operator_ssh="# no operator route (apply.sh --operator-iface)"
if [[ -n "$operator_iface" ]]; then
  [[ "$operator_iface" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || { echo "--operator-iface: invalid interface name" >&2; exit 2; }
  operator_replies='iifname "'"$bridge"'" oifname "'"$operator_iface"'" ct direction reply ct state established accept'
  operator_ssh='iifname "'"$operator_iface"'" oifname "'"$bridge"'" tcp dport 22 ct state new accept'
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ruleset="$(sed -e "s|@BRIDGE@|$bridge|g" -e "s|@SUBNET@|$subnet|g" -e "s|@GATEWAY@|$gateway|g" \
  -e "s|@GUEST_API_PORT@|$guest_api_port|g" -e "s|@UPLINK_MATCH@|$uplink_match|g" \
  -e "s|@OPERATOR_REPLIES@|$operator_replies|g" -e "s|@OPERATOR_SSH@|$operator_ssh|g" "$here/agentlab.nft.tmpl")"
if [[ -n "$port_prefix" ]]; then
  ruleset+=$'\n'"$(sed -e "s|@PORT_PREFIX@|$port_prefix|g" "$here/bridge-ports.nft.tmpl")"
fi

# Replace our tables atomically: create-if-missing, delete, define — one nft transaction.
transaction="$(printf 'table inet agentlab\ndelete table inet agentlab\ntable bridge agentlab\ndelete table bridge agentlab\n%s\n' "$ruleset")"

if [[ "$mode" == "dry-run" ]]; then
  echo "# would set net.ipv4.ip_forward=1 (now $(cat /proc/sys/net/ipv4/ip_forward))"
  if nft list table inet agentlab >/dev/null 2>&1; then
    echo "# would replace the loaded tables inet/bridge agentlab with:"
  else
    echo "# would load the tables inet/bridge agentlab:"
  fi
  printf '%s\n' "$ruleset"
  nft --check -f - <<<"$transaction"
  exit 0
fi

command -v nft >/dev/null || { echo "nft not found: apt-get install nftables" >&2; exit 1; }
nft -f - <<<"$transaction"
sysctl -qw net.ipv4.ip_forward=1
echo "agentlab ruleset applied to $bridge ($subnet, guest API $gateway:$guest_api_port)" >&2
