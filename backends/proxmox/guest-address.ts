// Where a Proxmox guest is reachable: the address the QEMU guest agent reports on its net0.
import { NET_FORMAT } from '../../common/property-string';
import { PermanentBackendError } from '../contract';
import { readProperty, type VmConfig } from './drives';
import { isPveError, PveError } from './errors';
import { vmPath, type VmApi } from './vm-api';

interface AgentInterfaces {
  result?: {
    name: string;
    'hardware-address'?: string;
    'ip-addresses'?: { 'ip-address': string; 'ip-address-type': string }[];
  }[];
}

/**
 * The IPv4 address of the guest's net0, found by its MAC (which Proxmox wrote into net0): a guest may bring
 * up docker0 or another bridge before eth0 has its lease, and only net0 is on vmbr1. Link-local addresses
 * (169.254/16) are what an interface has before DHCP answers; they are never the guest's address.
 * undefined while the guest boots.
 */
export async function net0Address(api: VmApi, vmid: number, config: VmConfig): Promise<string | undefined> {
  const net0 = readProperty(config.net0, NET_FORMAT);
  const mac = typeof net0 === 'string' ? undefined : net0.macaddr?.toLowerCase();
  if (!mac) throw new PermanentBackendError(`VM ${vmid} has no net0 with a MAC address (net0: ${config.net0})`);
  let reply: AgentInterfaces;
  try {
    reply = await api.client.get(await vmPath(api, vmid, '/agent/network-get-interfaces'));
  } catch (err) {
    if (isPveError(err, 'agent-not-running')) return undefined; // still booting
    if (err instanceof PveError && /^VM \d+ is not running$/.test(err.pveMessage)) return undefined;
    throw err;
  }
  const nic = reply.result?.find((n) => n['hardware-address']?.toLowerCase() === mac);
  const v4 = nic?.['ip-addresses']?.find(
    (a) => a['ip-address-type'] === 'ipv4' && !a['ip-address'].startsWith('169.254.'),
  );
  return v4?.['ip-address'];
}
