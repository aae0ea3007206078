#!/usr/bin/env bash
# Builds the Proxmox VM template agentlab clones: a cloud image with Node 24, git, the agent CLIs, the guest runner
# and its systemd unit (via virt-customize), the QEMU guest agent on, and a cloud-init drive.
# --dry-run prints every command instead of running it. The guest runner it installs is guest/*.ts as
# `npm run build` compiles it (dist/guest/*.js): run that first.
set -euo pipefail

usage() {
  cat >&2 <<USAGE
usage: $0 --image FILE.qcow2 [--vmid 9000] [--storage local-lvm] [--bridge vmbr1] [--name agentlab-template]
          [--cores 2] [--memory 4096] [--dry-run]
USAGE
  exit 2
}

vmid=9000
storage="local-lvm"
bridge="vmbr1"
name="agentlab-template"
cores=2
memory=4096
image=""
dry_run=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --image) image="${2:?}"; shift ;;
    --vmid) vmid="${2:?}"; shift ;;
    --storage) storage="${2:?}"; shift ;;
    --bridge) bridge="${2:?}"; shift ;;
    --name) name="${2:?}"; shift ;;
    --cores) cores="${2:?}"; shift ;;
    --memory) memory="${2:?}"; shift ;;
    --dry-run) dry_run=true ;;
    *) usage ;;
  esac
  shift
done
[[ -n "$image" ]] || { echo "--image: a cloud image (e.g. debian-12-genericcloud-amd64.qcow2) is required" >&2; exit 2; }
[[ "$vmid" =~ ^[0-9]+$ && "$vmid" -ge 100 ]] || { echo "--vmid: expected an integer >= 100, got \"$vmid\"" >&2; exit 2; }
[[ "$cores" =~ ^[0-9]+$ ]] || { echo "--cores: expected an integer" >&2; exit 2; }
[[ "$memory" =~ ^[0-9]+$ ]] || { echo "--memory: expected MiB as an integer" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$root/dist/guest/agent-runner.js" ]] ||
  { echo "$root/dist/guest/agent-runner.js is missing: run \`npm run build\` first" >&2; exit 1; }
# Every module of the compiled runner goes beside its entry in /usr/local/lib/agentlab.
runner_uploads=()
for file in "$root"/dist/guest/*.js; do
  runner_uploads+=(--upload "$file:/usr/local/lib/agentlab/$(basename "$file")")
done
work_image="/var/tmp/${name}-${vmid}.qcow2"

run() {
  if $dry_run; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

if ! $dry_run; then
  [[ -f "$image" ]] || { echo "--image: $image does not exist" >&2; exit 1; }
  command -v qm >/dev/null || { echo "qm not found: run this on a Proxmox VE host" >&2; exit 1; }
  command -v virt-customize >/dev/null || { echo "virt-customize not found: apt-get install libguestfs-tools" >&2; exit 1; }
  command -v curl >/dev/null || { echo "curl not found: apt-get install curl" >&2; exit 1; }
  if qm status "$vmid" >/dev/null 2>&1; then echo "VM $vmid already exists; choose another --vmid" >&2; exit 1; fi
fi

# The agent CLIs, at the versions the local backend's tools directory pins (guest/agent-packages.json).
agents="$(node -e 'const p = require(process.argv[1]); console.log(Object.values(p).map((a) => a.name + "@" + a.version).join(" "))' "$root/guest/agent-packages.json")"

# Node for the runner and the agent CLIs: the release the suite tests (.node-version), not the image's own
# (Debian 12's nodejs is Node 18, end of life). Node's official tarball, checked against the release's
# SHASUMS256.txt, unpacked into /usr/local: node and the agents' binaries land on every PATH, and
# guest/agent-runner.service starts /usr/local/bin/node.
node_version="$(<"$root/.node-version")"
node_tarball="node-v$node_version-linux-x64.tar.xz"
node_release="https://nodejs.org/dist/v$node_version"
node_download="/var/tmp/${name}-${vmid}-node"
# The installation's directories alone: not its README, LICENSE and CHANGELOG into /usr/local itself.
node_tree="$(printf "node-v$node_version-linux-x64/%s " bin include lib share)"
guest_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

run install -d -m 0700 "$node_download"
run curl -fsSL --proto =https -o "$node_download/SHASUMS256.txt" "$node_release/SHASUMS256.txt"
run curl -fsSL --proto =https -o "$node_download/$node_tarball" "$node_release/$node_tarball"
# sha256sum fails on no matching line as on a wrong sum.
# shellcheck disable=SC2016 # expanded by that sh, from its arguments
run sh -c 'cd "$1" && awk -v f="$2" '\''$2 == f'\'' SHASUMS256.txt | sha256sum --check --strict' \
  check-node "$node_download" "$node_tarball"
run cp "$image" "$work_image"
run virt-customize -a "$work_image" \
  --install qemu-guest-agent,git,ca-certificates,xz-utils \
  --upload "$node_download/$node_tarball:/var/tmp/$node_tarball" \
  --run-command "tar -xJf /var/tmp/$node_tarball -C /usr/local --strip-components=1 --no-same-owner $node_tree && rm /var/tmp/$node_tarball" \
  --run-command "env PATH=$guest_path npm install --global --no-audit --no-fund $agents" \
  --run-command 'useradd --create-home --shell /bin/bash agent || true' \
  --mkdir /usr/local/lib/agentlab \
  "${runner_uploads[@]}" \
  --upload "$root/guest/agent-runner.service:/etc/systemd/system/agent-runner.service" \
  --run-command 'systemctl enable qemu-guest-agent agent-runner.service' \
  --truncate /etc/machine-id
run qm create "$vmid" --name "$name" --cores "$cores" --memory "$memory" --net0 "virtio,bridge=$bridge" \
  --scsihw virtio-scsi-pci --agent enabled=1 --ostype l26 --serial0 socket --vga serial0
run qm set "$vmid" --scsi0 "$storage:0,import-from=$work_image"
run qm set "$vmid" --ide2 "$storage:cloudinit"
run qm set "$vmid" --boot order=scsi0
run qm template "$vmid"
run rm -f "$work_image"
run rm -rf "$node_download"
