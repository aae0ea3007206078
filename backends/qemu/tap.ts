// A VM's NIC on the host: a persistent tap device, a port of the agent bridge, isolated from the other ports.
import execa from 'execa';
import { PORT_PREFIX } from '../local/network';

/**
 * `alvq<vmid>`: the local backend's port prefix, so the bridge ruleset's layer-2 rule (no frame between two
 * sandbox ports) covers QEMU VMs too, and a `q` so it never clashes with a local sandbox's veth.
 */
export const tapName = (vmid: number): string => `${PORT_PREFIX}q${vmid}`;

/** A fresh tap on `bridge`, made whole again if an earlier attempt left part of one. */
export async function createTap(vmid: number, bridge: string): Promise<void> {
  const name = tapName(vmid);
  await deleteTap(vmid);
  await execa('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
  await execa('ip', ['link', 'set', name, 'master', bridge]);
  // The first layer: the bridge forwards nothing between two isolated ports (the ruleset is the second).
  await execa('bridge', ['link', 'set', 'dev', name, 'isolated', 'on']);
  await execa('ip', ['link', 'set', name, 'up']);
}

export async function deleteTap(vmid: number): Promise<void> {
  await execa('ip', ['link', 'del', tapName(vmid)], { reject: false });
}

export async function tapExists(vmid: number): Promise<boolean> {
  return (await execa('ip', ['link', 'show', tapName(vmid)], { reject: false })).exitCode === 0;
}
