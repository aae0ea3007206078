// What the Proxmox backend's parts share of the node they drive: the client, a VM's API path, and the wait for a task.
import { apiPath, type ProxmoxClient } from './client';
import type { VmConfig } from './drives';
import { isPveError } from './errors';

export interface VmApi {
  client: ProxmoxClient;
  /** The Proxmox node this backend drives. */
  node: string;
  /** Waits for a task (UPID) to end, heartbeating meanwhile; throws when it failed. */
  wait(upid: string): Promise<void>;
}

export async function vmPath(api: VmApi, vmid: number, rest = ''): Promise<string> {
  return apiPath`/nodes/${api.node}/qemu/${vmid}` + rest;
}

/** The VM's config; undefined when there is no VM of that VMID on the node. */
export async function readVmConfig(api: VmApi, vmid: number): Promise<VmConfig | undefined> {
  try {
    return await api.client.get<VmConfig>(await vmPath(api, vmid, '/config'));
  } catch (err) {
    if (isPveError(err, 'not-found')) return undefined;
    throw err;
  }
}
