// The simulator's failures: a sync HTTP error (status line + body in either PVE format) or a task's exitstatus.

/** Thrown by a handler: becomes `<status> <first line>` plus the JSON body of the configured format. */
export class SimHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

export const paramError = (errors: Record<string, string>): SimHttpError =>
  new SimHttpError(400, 'Parameter verification failed.', errors);

/** Thrown inside a task worker: the text becomes the task's exitstatus and `TASK ERROR:` line. */
export class TaskError extends Error {}

export const configMissing = (node: string, vmid: number): string =>
  `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`;
export const configNotFound = (node: string, vmid: number): string =>
  `unable to find configuration file for VM ${vmid} on node '${node}'`;
export const flockTimeout = (vmid: number): string =>
  `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout`;
export const storageFlockTimeout = (storage: string): string =>
  `can't lock file '/var/lock/pve-manager/pve-storage-${storage}' - got timeout`;
export const storageLockTimeout = (storage: string): string => `clone failed: ${storageFlockTimeout(storage)}`;
/** pveproxy resolving a node that is not in the cluster (the text depends on the resolver; this is glibc's). */
export const unknownNode = (node: string): string =>
  `hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`;
