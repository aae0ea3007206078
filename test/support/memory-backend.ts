// A SandboxBackend that keeps its VMs in memory: the fast workflow tests drive the real activities
// (createActivities) against it, in-process, with faults and holds the test sets directly.
import { createHash } from 'node:crypto';
import type { Owner, ResolvedProfile } from '../../common/contract';
import {
  PermanentBackendError,
  type DestroyOutcome,
  type GuestBoot,
  type OwnedVm,
  type SandboxBackend,
  type VmRef,
} from '../../backends/contract';
import { ownership, requireOwner } from '../../backends/ownership';
import { secretHash } from '../../common/bootstrap';

export interface MemoryVm {
  vmid: number;
  owner: Owner;
  attempt: number;
  running: boolean;
  /** The one-time bootstrap token, until deleteBootstrap (the guest's copy, in a real VM's cloud-init). */
  token?: string;
  tokenHash?: string;
  snapshots: string[];
}

export interface MemoryFaults {
  /** destroy throws (a backend outage during teardown); retrying does not help until it is cleared. */
  failDestroy?: boolean;
  /** The guest never reports an address. */
  neverReady?: boolean;
  /** snapshot throws this message (a VM lock, say). */
  failSnapshot?: string;
}

export type BackendOp = 'allocate' | 'clone' | 'configure' | 'start' | 'stop' | 'destroy' | 'snapshot' | 'rollback';

export class MemoryBackend implements SandboxBackend {
  readonly kind = 'local' as const;
  readonly vms = new Map<number, MemoryVm>();
  /** Every VM really created or destroyed, as the local backend's journal records them. */
  readonly journal: { op: 'clone' | 'destroy'; vmid: number; jobId: string }[] = [];
  /** Every call that reached the backend, in order: what a test asserts "changed nothing" against. */
  readonly calls: { op: BackendOp; vmid?: number; jobId?: string }[] = [];
  faults: MemoryFaults = {};
  private nextVmid: number;
  private cloneGate?: Promise<void>;

  constructor(private readonly range = { min: 7000, max: 7999 }) {
    this.nextVmid = range.min;
  }

  /** Clones wait until the returned function is called: the workflow stays in PROVISIONING meanwhile. */
  holdClones(): () => void {
    let release!: () => void;
    this.cloneGate = new Promise((resolve) => (release = resolve));
    return () => {
      this.cloneGate = undefined;
      release();
    };
  }

  /** What the guest would present to the guest API: the hash the workflow holds, and a credential of its own. */
  claimFor(vmid: number): { tokenHash: string; runnerCredentialHash: string } {
    const vm = this.vms.get(vmid);
    if (!vm?.tokenHash) throw new Error(`sandbox ${vmid} has no bootstrap token`);
    const credential = createHash('sha256').update(`runner-${vmid}-${vm.tokenHash}`).digest('hex');
    return { tokenHash: vm.tokenHash, runnerCredentialHash: credential };
  }

  ops(jobId: string, op?: BackendOp): BackendOp[] {
    return this.calls.filter((c) => c.jobId === jobId && (!op || c.op === op)).map((c) => c.op);
  }

  private record(op: BackendOp, vmid?: number): void {
    const jobId = vmid === undefined ? undefined : this.vms.get(vmid)?.owner.jobId;
    this.calls.push({ op, vmid, jobId });
  }

  /** The backends' one guard (backends/ownership.ts), over the VM's owner. */
  private owned({ vmid, owner }: VmRef, options?: { absentIsFine?: boolean }): MemoryVm {
    const vm = this.vms.get(vmid);
    requireOwner(`sandbox ${vmid}`, { exists: vm !== undefined, markedBy: vm?.owner.workflowId }, owner, options);
    return vm!;
  }

  async allocate(owner: Owner, attempt: number): Promise<number> {
    for (const vm of this.vms.values()) {
      // A retried activity gets the VMID its first attempt reserved.
      if (vm.owner.workflowId === owner.workflowId && vm.attempt === attempt) return vm.vmid;
    }
    for (let i = 0; i <= this.range.max - this.range.min; i++) {
      const vmid = this.range.min + ((this.nextVmid - this.range.min + i) % (this.range.max - this.range.min + 1));
      if (this.vms.has(vmid)) continue;
      this.nextVmid = vmid + 1;
      this.vms.set(vmid, { vmid, owner, attempt, running: false, snapshots: [] });
      this.record('allocate', vmid);
      return vmid;
    }
    throw new Error(`no free VMID in ${this.range.min}-${this.range.max}`);
  }

  async clone(ref: VmRef): Promise<void> {
    this.owned(ref);
    const { vmid, owner } = ref;
    this.record('clone', vmid);
    await this.cloneGate;
    if (!this.journal.some((e) => e.op === 'clone' && e.vmid === vmid && e.jobId === owner.jobId)) {
      this.journal.push({ op: 'clone', vmid, jobId: owner.jobId });
    }
  }

  /** Keeps the guest's copy of the token the activity minted, as a real VM's cloud-init data would. */
  async configure(ref: VmRef, _profile: ResolvedProfile, { bootstrap }: GuestBoot): Promise<void> {
    const vm = this.owned(ref);
    this.record('configure', ref.vmid);
    vm.token = bootstrap.token;
    vm.tokenHash = secretHash(bootstrap.token);
  }

  async start(ref: VmRef): Promise<void> {
    this.owned(ref).running = true;
    this.record('start', ref.vmid);
  }

  async guestAddress(ref: VmRef): Promise<string | undefined> {
    const vm = this.owned(ref);
    return vm.running && !this.faults.neverReady ? `127.0.0.${(ref.vmid % 250) + 2}` : undefined;
  }

  async stop(ref: VmRef): Promise<void> {
    this.owned(ref).running = false;
    this.record('stop', ref.vmid);
  }

  async deleteBootstrap(ref: VmRef): Promise<void> {
    const vm = this.owned(ref, { absentIsFine: true });
    if (vm) delete vm.token;
  }

  async destroy({ vmid, owner }: VmRef): Promise<DestroyOutcome> {
    this.record('destroy', vmid);
    if (this.faults.failDestroy) throw new Error(`injected fault: destroying sandbox ${vmid} failed`);
    const vm = this.vms.get(vmid);
    const state = ownership({ exists: vm !== undefined, markedBy: vm?.owner.workflowId }, owner);
    if (state !== 'ours') return state;
    this.vms.delete(vmid);
    this.journal.push({ op: 'destroy', vmid, jobId: owner.jobId });
    return 'destroyed';
  }

  async listOwned(): Promise<OwnedVm[]> {
    return [...this.vms.values()].map((vm) => ({ vmid: vm.vmid, ...vm.owner, running: vm.running }));
  }

  async snapshot(ref: VmRef, name: string): Promise<void> {
    const vm = this.owned(ref);
    this.record('snapshot', ref.vmid);
    if (this.faults.failSnapshot) throw new Error(this.faults.failSnapshot);
    if (!vm.snapshots.includes(name)) vm.snapshots.push(name);
  }

  async rollback(ref: VmRef, name: string): Promise<void> {
    const vm = this.owned(ref);
    this.record('rollback', ref.vmid);
    if (!vm.snapshots.includes(name)) throw new PermanentBackendError(`sandbox ${ref.vmid} has no snapshot ${name}`);
    vm.running = false;
  }

  /** VMIDs that still exist. */
  live(): number[] {
    return [...this.vms.keys()];
  }
}
