// The NoCloud seed a QEMU guest boots with: a small ISO 9660 volume labelled `cidata` holding user-data,
// meta-data and network-config, which the guest image's cloud-init reads (datasource_list: [NoCloud, None]).
// The user-data is the Proxmox backend's snippet, unchanged, so both backends hand the guest one bootstrap.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import type { GuestBootstrap } from '../../common/contract';
import { renderUserData } from '../proxmox/snippet';

/** cloud-init's network config, version 2 (netplan's schema); cloud-init renders it for systemd-networkd. */
export type NetworkConfig = { version: 2; ethernets: Record<string, Record<string, unknown>> };

/**
 * DHCP on the NIC with this MAC address, named eth0 whatever the kernel called it. By MAC with set-name, not by a
 * name pattern: cloud-init 22.4's networkd renderer writes the entry's id as the link name (Name=<id>) and drops a
 * `match: {name: ...}` glob, so a pattern never matches; set-name makes cloud-init rename the link to that id
 * before networkd starts.
 */
export function dhcpNetwork(mac: string): NetworkConfig {
  return { version: 2, ethernets: { eth0: { match: { macaddress: mac }, 'set-name': 'eth0', dhcp4: true } } };
}

/**
 * A fixed address on the agent bridge: the backend picks it by VMID, so it is known before the guest boots and
 * no DHCP server is needed. `nameservers` empty: no DNS (the gateway's forwarder is off).
 */
export function staticNetwork(
  mac: string,
  address: { cidr: string; gateway: string; nameservers: string[] },
): NetworkConfig {
  const eth0: Record<string, unknown> = {
    match: { macaddress: mac },
    'set-name': 'eth0',
    addresses: [address.cidr],
    routes: [{ to: '0.0.0.0/0', via: address.gateway }],
  };
  if (address.nameservers.length > 0) eth0.nameservers = { addresses: address.nameservers };
  return { version: 2, ethernets: { eth0 } };
}

export interface SeedContent {
  /** Absent: a spent seed, the same instance and network without the token (the VM may boot again). */
  bootstrap?: GuestBootstrap;
  /** cloud-init runs its once-per-instance modules again whenever this changes: one per VM. */
  instanceId: string;
  hostname: string;
  /** dhcpNetwork(mac) for a VM on a DHCP network (QEMU's user-mode networking has one). */
  network: NetworkConfig;
}

/** The three files of the seed, by name; the user-data is renderUserData's, the snippet Proxmox writes. */
export function seedFiles(content: SeedContent): Record<'user-data' | 'meta-data' | 'network-config', string> {
  return {
    'user-data': content.bootstrap ? renderUserData(content.bootstrap) : '#cloud-config\n{}\n',
    'meta-data': YAML.stringify({ 'instance-id': content.instanceId, 'local-hostname': content.hostname }),
    'network-config': YAML.stringify(content.network),
  };
}

/**
 * Writes the seed ISO at `isoPath` (0600: it carries the bootstrap token) with genisoimage: no loop device,
 * no mount. The files go through a private directory beside it that is removed again.
 */
export async function writeNoCloudSeed(isoPath: string, content: SeedContent): Promise<void> {
  const staging = await fs.mkdtemp(`${isoPath}.files-`);
  try {
    for (const [name, text] of Object.entries(seedFiles(content))) {
      await fs.writeFile(join(staging, name), text, { mode: 0o600 });
    }
    const temp = `${isoPath}.tmp-${process.pid}`;
    // -rock: long lower-case names as cloud-init expects them; -joliet for readers without Rock Ridge.
    await execa('genisoimage', ['-quiet', '-output', temp, '-volid', 'cidata', '-joliet', '-rock', staging]);
    await fs.chmod(temp, 0o600);
    await fs.rename(temp, isoPath);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}
