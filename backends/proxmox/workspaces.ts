// Persistent workspaces on Proxmox: a volume on the node's storage, kept between jobs by a "holder" VM that is
// created empty and never started, and moved to a job's VM and back with move_disk's reassign (`target-vmid`).
// A volume belongs to the VMID in its name, so it needs a VM to belong to between jobs: destroying a job's VM
// (purge, destroy-unreferenced-disks) would take any disk still in its config, detached (`unusedN`) or not.
import { z } from 'zod';
import { WORKSPACE_NAME_PATTERN, type WorkspaceRef } from '../../common/workspace';
import { DRIVE_FORMAT, parsePropertyString } from '../../common/property-string';
import { PermanentBackendError, type VmRef, type WorkspaceStorage } from '../contract';
import { apiPath, type ProxmoxClient } from './client';
import { isPveError, permanentIfPve, PveError } from './errors';
import { foundVm, ownerTag, tagsOf } from './marks';
import { ownership, requireOwner } from '../ownership';
import type { VmConfig } from './drives';

/** The config key the workspace has on the holder and on a job's VM. */
export const WORKSPACE_DISK = 'scsi1';
/** The drive's serial: how a guest finds the disk (/dev/disk/by-id/…) and how the backend recognises it. */
export const WORKSPACE_SERIAL = 'agentlab-workspace';
/** Holders carry this tag and never `agentlab`: the reconciler lists only VMs tagged `agentlab`. */
export const WORKSPACE_TAG = 'agentlab-workspace';
const MARK_PREFIX = 'agentlab-workspace: ';

/** The holder's mark, on its own line of its description: the workspace workflow that owns the volume. */
const workspaceMarkSchema = z.object({
  workflowId: z.string({ message: 'workspace mark: workflowId must be a string' }),
  name: z.string({ message: 'workspace mark: name must be a string' }),
});
export type WorkspaceMark = z.infer<typeof workspaceMarkSchema>;

export function parseWorkspaceMark(description: unknown): WorkspaceMark | undefined {
  const line = String(description ?? '')
    .split('\n')
    .find((l) => l.startsWith(MARK_PREFIX));
  if (!line) return undefined;
  try {
    const parsed = workspaceMarkSchema.safeParse(JSON.parse(line.slice(MARK_PREFIX.length)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export const holderName = (name: string): string => `agentlab-ws-${name}`;

/** What the workspaces need of the backend: its client and node, task waits, a free VMID, a stop. */
export interface ProxmoxWorkspaceHooks {
  client: ProxmoxClient;
  node: string;
  /** Where new workspace volumes go (the proxmox `storage` setting, else local-lvm). */
  storage: string;
  wait(upid: string): Promise<void>;
  /** A VMID from agentlab's range that no VM uses (the same one again for a retried create). */
  freeVmid(workspace: WorkspaceRef): Promise<number>;
  /** That VMID was taken by someone else meanwhile: the next call picks another. */
  forgetVmid(vmid: number): void;
}

interface Holder {
  vmid: number;
  config: VmConfig;
}

export class ProxmoxWorkspaces implements WorkspaceStorage {
  constructor(private readonly hooks: ProxmoxWorkspaceHooks) {}

  private get client(): ProxmoxClient {
    return this.hooks.client;
  }

  private vmPath(vmid: number, rest = ''): string {
    return apiPath`/nodes/${this.hooks.node}/qemu/${vmid}` + rest;
  }

  private async config(vmid: number): Promise<VmConfig | undefined> {
    try {
      return await this.client.get<VmConfig>(this.vmPath(vmid, '/config'));
    } catch (err) {
      if (isPveError(err, 'not-found')) return undefined;
      throw err;
    }
  }

  /** The holder VM of this workspace workflow on this node, found by its tag and confirmed by its description. */
  private async holder(workspace: WorkspaceRef): Promise<Holder | undefined> {
    const tag = ownerTag(workspace.workflowId);
    const vms = await this.client.get<{ vmid: number; node: string; tags?: string }[]>('/cluster/resources', {
      type: 'vm',
    });
    for (const vm of vms.filter((v) => v.node === this.hooks.node && tagsOf(v.tags).includes(tag))) {
      const config = await this.config(vm.vmid);
      if (parseWorkspaceMark(config?.description)?.workflowId === workspace.workflowId) {
        return { vmid: vm.vmid, config: config! };
      }
    }
    return undefined;
  }

  private async requireHolder(workspace: WorkspaceRef): Promise<Holder> {
    const holder = await this.holder(workspace);
    if (!holder)
      throw new PermanentBackendError(`workspace ${workspace.name} has no holder VM on node ${this.hooks.node}`);
    return holder;
  }

  private async moveDisk(from: number, to: number): Promise<void> {
    const upid = await this.client.post<string>(this.vmPath(from, '/move_disk'), {
      disk: WORKSPACE_DISK,
      'target-vmid': to,
      'target-disk': WORKSPACE_DISK,
    });
    await this.hooks.wait(upid);
  }

  async create(workspace: WorkspaceRef): Promise<void> {
    return permanentIfPve(async () => {
      if (!WORKSPACE_NAME_PATTERN.test(workspace.name)) {
        throw new PermanentBackendError(`invalid workspace name ${JSON.stringify(workspace.name)}`);
      }
      if (await this.holder(workspace)) return; // a retried create: PVE removes a VM whose create task failed
      const vmid = await this.hooks.freeVmid(workspace);
      const mark: WorkspaceMark = { workflowId: workspace.workflowId, name: workspace.name };
      let upid: string;
      try {
        upid = await this.client.post<string>(apiPath`/nodes/${this.hooks.node}/qemu`, {
          vmid,
          name: holderName(workspace.name),
          description: [
            `${MARK_PREFIX}${JSON.stringify(mark)}`,
            `Holds agentlab workspace ${workspace.name} between jobs; never started. Destroyed by \`agentlab workspace destroy ${workspace.name}\`.`,
          ].join('\n'),
          tags: [WORKSPACE_TAG, ownerTag(workspace.workflowId)].join(';'),
          [WORKSPACE_DISK]: `${this.hooks.storage}:${workspace.sizeGb},serial=${WORKSPACE_SERIAL}`,
        });
      } catch (err) {
        // A clone (or anyone) took the VMID since we picked it: the activity's retry picks another.
        if (err instanceof PveError && /already exists/.test(err.pveMessage)) this.hooks.forgetVmid(vmid);
        throw err;
      }
      await this.hooks.wait(upid);
    });
  }

  async delete(workspace: WorkspaceRef): Promise<void> {
    return permanentIfPve(async () => {
      const holder = await this.holder(workspace);
      if (!holder) return;
      if (holder.config[WORKSPACE_DISK] === undefined) {
        throw new PermanentBackendError(
          `workspace ${workspace.name}'s volume is not on its holder VM ${holder.vmid}: still attached to a sandbox?`,
        );
      }
      try {
        await this.hooks.wait(
          await this.client.delete<string>(this.vmPath(holder.vmid), {
            purge: true,
            'destroy-unreferenced-disks': true,
          }),
        );
      } catch (err) {
        if (!isPveError(err, 'not-found')) throw err; // an earlier attempt's destroy won
      }
    });
  }

  /**
   * Holder → the job's VM. Idempotent by where the volume is: still on the holder, it moves; on this VM
   * already (a retried attach), nothing to do; elsewhere, it is lost to us and we say so.
   */
  async attach({ vmid, owner }: VmRef, workspace: WorkspaceRef): Promise<void> {
    return permanentIfPve(async () => {
      const holder = await this.requireHolder(workspace);
      const config = await this.config(vmid);
      requireOwner(`VM ${vmid}`, foundVm(config), owner);
      if (holder.config[WORKSPACE_DISK] !== undefined) {
        await this.moveDisk(holder.vmid, vmid);
        return;
      }
      if (!isWorkspaceDrive(config![WORKSPACE_DISK])) {
        throw new PermanentBackendError(
          `workspace ${workspace.name}'s volume is neither on its holder VM ${holder.vmid} nor on VM ${vmid}`,
        );
      }
    });
  }

  /**
   * The job's VM → holder, before the VM is destroyed. The volume on the holder already (a retried detach,
   * or an attach that never happened) is success, whatever the VM has at scsi1; so is a VM that is gone.
   */
  async detach({ vmid, owner }: VmRef, workspace: WorkspaceRef): Promise<void> {
    return permanentIfPve(async () => {
      const holder = await this.requireHolder(workspace);
      if (holder.config[WORKSPACE_DISK] !== undefined) return;
      const config = await this.config(vmid);
      if (ownership(foundVm(config), owner) !== 'ours' || !isWorkspaceDrive(config![WORKSPACE_DISK])) return;
      const status = await this.client.get<{ status: string }>(this.vmPath(vmid, '/status/current'));
      // PVE moves no disk of a running VM to another ("detach first"); the sandbox is done with it anyway.
      if (status.status === 'running')
        await this.hooks.wait(await this.client.post<string>(this.vmPath(vmid, '/status/stop')));
      // PVE moves no disk a snapshot still names ("Can't move disk used by a snapshot to another VM"), and a
      // sandbox's snapshots include the workspace disk. The VM is about to be destroyed with them anyway.
      const snapshots = await this.client.get<{ name: string }[]>(this.vmPath(vmid, '/snapshot'));
      for (const { name } of snapshots.filter((s) => s.name !== 'current')) {
        await this.hooks.wait(await this.client.delete<string>(this.vmPath(vmid) + apiPath`/snapshot/${name}`));
      }
      await this.moveDisk(vmid, holder.vmid);
    });
  }
}

/** A drive that carries the workspace's serial. */
export function isWorkspaceDrive(value: unknown): boolean {
  if (value === undefined) return false;
  try {
    return parsePropertyString(String(value), DRIVE_FORMAT, { lenient: true }).serial === WORKSPACE_SERIAL;
  } catch {
    return false; // a drive string we cannot read is not one we wrote
  }
}
