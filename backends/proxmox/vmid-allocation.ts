// Picking a Proxmox VMID for a job: a retried allocation finds its own VM or reservation again, and workers
// allocating at the same moment rarely pick the same free one.
import type { Owner } from '../../common/contract';
import { ownerTag, parseOwner, tagsOf } from './marks';

/** A VM as the cluster's resource listing shows it. */
export interface ClusterVm {
  vmid: number;
  status: string;
  tags?: string;
  node: string;
}

/** How long an allocated but not yet cloned VMID stays reserved inside this worker. */
const PENDING_TTL_MS = 10 * 60_000;

export interface VmidSource {
  range: { min: number; max: number };
  /** Every VM of the cluster (a VMID is cluster-wide). */
  vms(): Promise<ClusterVm[]>;
  /** The description of a VM's config (its owner mark), undefined when it is gone. */
  description(vmid: number): Promise<unknown>;
}

export class VmidAllocator {
  /** vmid → owner, so concurrent allocations in this process never hand out one VMID twice. */
  private readonly pending = new Map<number, { key: string; attempt: number; at: number }>();

  constructor(private readonly source: VmidSource) {}

  async allocate(owner: Owner, attempt: number): Promise<number> {
    const key = owner.workflowId;
    const vms = await this.source.vms();
    const tag = ownerTag(owner.workflowId);
    for (const vm of vms.filter((v) => tagsOf(v.tags).includes(tag))) {
      const mark = parseOwner(await this.source.description(vm.vmid));
      if (mark?.workflowId === owner.workflowId && mark.attempt === attempt) return vm.vmid; // a retry after a crash
    }
    const now = Date.now();
    for (const [vmid, p] of this.pending) {
      if (now - p.at > PENDING_TTL_MS) this.pending.delete(vmid);
      else if (p.key === key && p.attempt === attempt) return vmid;
    }
    const used = new Set(vms.map((v) => v.vmid));
    const { min, max } = this.source.range;
    const size = max - min + 1;
    // A random starting point makes workers that allocate at the same moment rarely pick the same VMID;
    // the clone is what really reserves it, and a loser gets VmidConflict and allocates again.
    const offset = Math.floor(Math.random() * size);
    for (let i = 0; i < size; i++) {
      const vmid = min + ((offset + i) % size);
      if (used.has(vmid) || this.pending.has(vmid)) continue;
      this.pending.set(vmid, { key, attempt, at: now });
      return vmid;
    }
    throw new Error(`no free VMID in ${min}-${max}: ${used.size} VMs on the cluster`);
  }

  /** The provisioning attempt a VMID was allocated for in this process, if it still is reserved. */
  attemptOf(vmid: number): number | undefined {
    return this.pending.get(vmid)?.attempt;
  }

  /** The VMID is cloned (the VM itself reserves it now) or lost to another clone. */
  release(vmid: number): void {
    this.pending.delete(vmid);
  }
}
