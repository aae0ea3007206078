// The cloud-init user-data snippet that carries the one-time bootstrap into the guest.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { GuestBootstrap } from '../../common/contract';

/** The workspace disk by its serial (WORKSPACE_SERIAL in workspaces.ts), as udev names a virtio-scsi disk. */
const WORKSPACE_DEVICE = '/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_agentlab-workspace';

export const snippetName = (vmid: number): string => `agentlab-${vmid}.yaml`;

/** The guest's user that the template creates (scripts/create_template.sh) and `sandbox ssh` logs in as. */
export const GUEST_USER = 'agent';

/**
 * cicustom replaces PVE's generated user-data, so this file is all cloud-init gets. `authorizedKeys`:
 * operators' public keys for GUEST_USER (`sandbox ssh`); the distro's default user stays as it was.
 */
export function renderUserData(bootstrap: GuestBootstrap, authorizedKeys: readonly string[] = []): string {
  const doc = {
    ...(authorizedKeys.length
      ? { users: ['default', { name: GUEST_USER, ssh_authorized_keys: [...authorizedKeys] }] }
      : {}),
    write_files: [
      {
        path: '/etc/agentlab/bootstrap.json',
        permissions: '0600',
        owner: 'root:root',
        content: JSON.stringify(bootstrap),
      },
    ],
    package_upgrade: false,
    // A new workspace's disk is blank: ext4 on first use (overwrite: false keeps an existing filesystem).
    ...(bootstrap.workspace
      ? {
          fs_setup: [{ device: WORKSPACE_DEVICE, filesystem: 'ext4', label: 'agentlab-ws', overwrite: false }],
          mounts: [[WORKSPACE_DEVICE, bootstrap.workspace, 'ext4', 'defaults,nofail', '0', '2']],
        }
      : {}),
  };
  return `#cloud-config\n${YAML.stringify(doc)}`;
}

/** Written 0600 via a temp file and rename, so a guest never boots from a half-written token. */
export async function writeSnippet(
  dir: string,
  bootstrap: GuestBootstrap,
  authorizedKeys: readonly string[] = [],
): Promise<void> {
  const path = join(dir, snippetName(bootstrap.vmid));
  const temp = `${path}.tmp-${process.pid}`;
  await fs.writeFile(temp, renderUserData(bootstrap, authorizedKeys), { mode: 0o600 });
  await fs.rename(temp, path);
}

export async function removeSnippet(dir: string, vmid: number): Promise<void> {
  await fs.rm(join(dir, snippetName(vmid)), { force: true });
}
