// The `proxmox` backend: a sandbox is a linked clone of a cloud-init template, marked as ours by tags and description.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Owner, ResolvedProfile } from '../../common/contract';
import { snapshotNameProblem } from '../../common/snapshot-names';
import { workflowWebUiUrl } from '../../common/web-ui';
import { WORKSPACE_MOUNT } from '../../common/workspace';
import {
  PermanentBackendError,
  type CloneJob,
  type DestroyOutcome,
  type GuestBoot,
  type OwnedVm,
  type SandboxBackend,
  type VmRef,
} from '../contract';
import { ownership, requireOwner } from '../ownership';
import { apiPath, type ProxmoxClient } from './client';
import { templateDiskStorage, type VmConfig } from './drives';
import { isPveError, permanentIfPve, PveError } from './errors';
import { net0Address } from './guest-address';
import { AGENTLAB_TAG, foundVm, ownerDescription, ownerTag, parseOwner, tagsOf, vmName, type VmLabel } from './marks';
import { KeyedSemaphore } from './semaphore';
import { removeSnippet, snippetName, writeSnippet } from './snippet';
import { growBootDisk, validateTemplate } from './template';
import { readVmConfig, vmPath, type VmApi } from './vm-api';
import { VmidAllocator, type ClusterVm } from './vmid-allocation';
import { isWorkspaceDrive, ProxmoxWorkspaces, WORKSPACE_DISK } from './workspaces';

export interface ProxmoxBackendOptions {
  client: ProxmoxClient;
  /**
   * The Proxmox node this worker drives: its own host (agentlab's `node`, its task queue), so clones, starts
   * and the snippets directory it writes all stay on one machine.
   */
  node: string;
  vmidRange: { min: number; max: number };
  /** Target storage of full clones; linked clones stay on the template's storage. */
  storage?: string;
  /** Local directory of the snippets storage (e.g. /var/lib/vz/snippets). */
  snippetsDir: string;
  snippetStorage?: string;
  bridge?: string;
  cloneMode?: 'linked' | 'full';
  /** Clones in flight per storage in this worker (default 2); see `cloneSlots`. */
  cloneConcurrency?: number;
  /** Called while waiting for tasks; the worker passes the activity heartbeat. */
  onPoll?: () => void;
  taskTimeoutMs?: number;
  pollIntervalMs?: number;
  /** Where the Temporal Web UI is, for the link in each VM's description (none without it). */
  temporal?: { uiUrl: string; namespace: string };
}

/** The VMID was taken by someone else between allocate and clone: the next provisioning attempt picks again. */
export class VmidConflictError extends Error {
  override name = 'VmidConflict';
}

export class ProxmoxBackend implements SandboxBackend {
  readonly kind = 'proxmox' as const;
  private readonly vmids: VmidAllocator;
  /**
   * PVE takes a storage's lock for each volume a clone creates (the cloud-init volume, each disk's thin
   * snapshot, zfs clone or allocation; not a full clone's copy: simulators/proxmox/data/storage-locks.json)
   * and fails a clone that waits for it longer than 10 s (`can't lock file
   * '/var/lock/pve-manager/pve-storage-<id>' - got timeout`). Twenty parallel clones could queue past that
   * there, so they queue here instead, where waiting costs nothing. An in-process semaphore is enough: the storages are this node's, and only this node's
   * worker polls `agentlab-host-<node>`, so no other process clones onto them on agentlab's behalf. (A
   * per-storage task queue with maxConcurrentActivityTaskExecutions would need the storage in the
   * workflow before the clone, one more Worker per storage, and would limit other activities' slots.)
   * The waiting activity keeps heartbeating (activities/heartbeat.ts), so it is never taken for dead.
   */
  private readonly cloneSlots: KeyedSemaphore;
  /** Persistent workspaces: a volume kept by a never-started holder VM between jobs (workspaces.ts). */
  readonly workspaces: ProxmoxWorkspaces;
  private readonly api: VmApi;

  constructor(private readonly options: ProxmoxBackendOptions) {
    this.api = { client: options.client, node: options.node, wait: (upid) => this.wait(upid) };
    this.vmids = new VmidAllocator({
      range: options.vmidRange,
      vms: () => this.vms(),
      description: async (vmid) => (await this.config(vmid))?.description,
    });
    this.cloneSlots = new KeyedSemaphore(options.cloneConcurrency ?? 2);
    this.workspaces = new ProxmoxWorkspaces({
      client: options.client,
      node: options.node,
      storage: options.storage ?? 'local-lvm',
      wait: (upid) => this.wait(upid),
      // The holder's VMID is allocated as a job's is, keyed by the workspace workflow.
      freeVmid: (workspace) =>
        this.allocate({ jobId: `workspace-${workspace.name}`, workflowId: workspace.workflowId }, 0),
      forgetVmid: (vmid) => this.vmids.release(vmid),
    });
  }

  private get client(): ProxmoxClient {
    return this.options.client;
  }

  /** The API's version: proves the URL, TLS and token work (used by `doctor`). */
  async version(): Promise<{ version: string; release?: string }> {
    return this.client.get<{ version: string; release?: string }>('/version');
  }

  /** The Proxmox node this backend drives. */
  get node(): string {
    return this.options.node;
  }

  /** Throws a PermanentBackendError when the cluster has no node of this name (used by `doctor`). */
  async checkNode(): Promise<void> {
    const nodes = (await this.client.get<{ node: string }[]>('/nodes')).map((n) => n.node);
    if (!nodes.includes(this.node)) {
      throw new PermanentBackendError(`node ${this.node} is not in the cluster, whose nodes are ${nodes.join(', ')}`);
    }
  }

  private vmPath(vmid: number, rest = ''): Promise<string> {
    return vmPath(this.api, vmid, rest);
  }

  private async wait(upid: string): Promise<void> {
    await this.client.waitTask(upid, {
      onPoll: this.options.onPoll,
      timeoutMs: this.options.taskTimeoutMs,
      initialIntervalMs: this.options.pollIntervalMs,
    });
  }

  private config(vmid: number): Promise<VmConfig | undefined> {
    return readVmConfig(this.api, vmid);
  }

  private async vms(): Promise<ClusterVm[]> {
    return this.client.get<ClusterVm[]>('/cluster/resources', { type: 'vm' });
  }

  async allocate(owner: Owner, attempt: number): Promise<number> {
    return permanentIfPve(() => this.vmids.allocate(owner, attempt));
  }

  async clone(
    { vmid, owner }: VmRef,
    profile: ResolvedProfile,
    attemptOfCall?: number,
    job: CloneJob = {},
  ): Promise<void> {
    return permanentIfPve(async () => {
      // From the call: a worker restarted since the allocation has no pending entry and would mark attempt 0.
      const attempt = attemptOfCall ?? this.vmids.attemptOf(vmid) ?? 0;
      if (await this.adoptExisting(vmid, owner)) return;
      const templateVmid = profile.templateVmid;
      if (templateVmid === undefined) throw new PermanentBackendError(`profile ${profile.name} has no templateVmid`);
      const template = await this.validateTemplate(templateVmid);
      const clonePath = await this.vmPath(templateVmid, '/clone');
      const label: VmLabel = {
        profile: profile.name,
        repo: job.repo,
        webUiUrl: this.options.temporal && workflowWebUiUrl(this.options.temporal, owner.workflowId),
      };
      const base = { newid: vmid, name: vmName(owner.jobId), description: ownerDescription(owner, attempt, label) };
      const full = { ...base, full: true, storage: this.options.storage };
      const templateStorage = templateDiskStorage(template);
      // The storage the new volumes land on: the template's for a linked clone, the configured one for a full clone.
      const target = (this.options.cloneMode === 'full' && this.options.storage) || templateStorage;
      try {
        await this.cloneSlots.run(target, async () => {
          let upid: string;
          try {
            upid = await this.client.post<string>(
              clonePath,
              this.options.cloneMode === 'full' ? full : { ...base, full: false },
            );
          } catch (err) {
            // Storage without linked-clone support (e.g. raw files on a dir storage): copy the disks instead.
            if (!(err instanceof PveError) || !/^Linked clone feature is not supported/.test(err.pveMessage)) throw err;
            upid = await this.client.post<string>(clonePath, full);
          }
          await this.wait(upid);
        });
      } catch (err) {
        if (
          err instanceof PveError &&
          /config file already exists|lock-\d+\.conf' - got timeout/.test(err.pveMessage)
        ) {
          // Someone else's clone got this VMID first — unless it was our own earlier try.
          if (await this.adoptExisting(vmid, owner)) return;
          this.vmids.release(vmid);
          throw new VmidConflictError(`VMID ${vmid} was taken by another clone (${err.pveMessage}); allocate again`);
        }
        throw err;
      }
      await this.markOwned(vmid, owner);
      this.vmids.release(vmid);
    });
  }

  /** True when the VM exists and this owner created it (a retried clone): finishes marking it. */
  private async adoptExisting(vmid: number, owner: Owner): Promise<boolean> {
    const config = await this.configAfterClone(vmid);
    if (!config) return false;
    if (parseOwner(config.description)?.workflowId !== owner.workflowId) {
      this.vmids.release(vmid);
      throw new VmidConflictError(`VMID ${vmid} already exists and is not this job's; allocate again`);
    }
    await this.markOwned(vmid, owner);
    return true;
  }

  /** The VM's config once no clone is running into it (its owner mark is written only at the end). */
  private async configAfterClone(vmid: number): Promise<VmConfig | undefined> {
    let config = await this.config(vmid);
    for (let i = 0; config?.lock === 'clone' && i < 600; i++) {
      this.options.onPoll?.();
      await sleep(this.options.pollIntervalMs ?? 500);
      config = await this.config(vmid);
    }
    return config;
  }

  private async markOwned(vmid: number, owner: Owner): Promise<void> {
    await this.client.put(await this.vmPath(vmid, '/config'), {
      tags: [AGENTLAB_TAG, ownerTag(owner.workflowId)].join(';'),
    });
  }

  /** Throws a PermanentBackendError naming what is wrong with the template (also used by `doctor`). */
  validateTemplate(templateVmid: number): Promise<VmConfig> {
    return validateTemplate(this.api, templateVmid);
  }

  /**
   * The one guard (ownership.ts) over the owner mark in the VM's description. Every VM method takes it: a
   * colliding foreign VMID, or another job's VM on a reused one, is never touched.
   */
  private async requireOwned({ vmid, owner }: VmRef): Promise<VmConfig> {
    const config = await this.config(vmid);
    requireOwner(`VM ${vmid}`, foundVm(config), owner);
    return config!; // requireOwner refused a VM that does not exist
  }

  async configure(vm: VmRef, profile: ResolvedProfile, { bootstrap, localRepo }: GuestBoot): Promise<void> {
    return permanentIfPve(async () => {
      if (localRepo) {
        throw new PermanentBackendError(
          `${localRepo.path} is a repository on a host, which only the local backend can hand to a sandbox`,
        );
      }
      const { vmid } = vm;
      const config = await this.requireOwned(vm);
      if (profile.diskGb !== undefined) await growBootDisk(this.api, vmid, config, profile, profile.diskGb);
      // attachWorkspace ran before configure: the workspace's disk is in the config from the first boot.
      const workspace = isWorkspaceDrive(config[WORKSPACE_DISK]) ? { workspace: WORKSPACE_MOUNT } : {};
      await writeSnippet(this.options.snippetsDir, { ...bootstrap, ...workspace }, profile.sshAuthorizedKeys);
      await this.client.put(await this.vmPath(vmid, '/config'), {
        cores: profile.cores,
        memory: String(profile.memoryMb),
        net0: `virtio,bridge=${this.options.bridge ?? 'vmbr1'}`,
        cicustom: `user=${this.options.snippetStorage ?? 'local'}:snippets/${snippetName(vmid)}`,
        ciupgrade: false, // a package upgrade on first boot only slows the sandbox down
      });
    });
  }

  async start(vm: VmRef): Promise<void> {
    return permanentIfPve(async () => {
      await this.requireOwned(vm);
      const { vmid } = vm;
      try {
        await this.wait(await this.client.post<string>(await this.vmPath(vmid, '/status/start')));
      } catch (err) {
        if (!isPveError(err, 'already-running')) throw err; // a retried start
      }
    });
  }

  async guestAddress(vm: VmRef): Promise<string | undefined> {
    return permanentIfPve(async () => net0Address(this.api, vm.vmid, await this.requireOwned(vm)));
  }

  async stop(vm: VmRef): Promise<void> {
    return permanentIfPve(async () => {
      await this.requireOwned(vm);
      const { vmid } = vm;
      await this.wait(await this.client.post<string>(await this.vmPath(vmid, '/status/stop')));
    });
  }

  /** Another job's VM on this VMID has its own snippet under this name: only this owner's (or none's) is removed. */
  async deleteBootstrap(vm: VmRef): Promise<void> {
    return permanentIfPve(async () => {
      requireOwner(`VM ${vm.vmid}`, foundVm(await this.config(vm.vmid)), vm.owner, { absentIsFine: true });
      await removeSnippet(this.options.snippetsDir, vm.vmid);
    });
  }

  async destroy({ vmid, owner }: VmRef): Promise<DestroyOutcome> {
    return permanentIfPve(async () => {
      // A clone of ours that is still running (its earlier activity attempt failed while PVE went on)
      // carries no mark yet: judging it now would call it foreign and leak it once the clone finishes.
      const state = ownership(foundVm(await this.configAfterClone(vmid)), owner);
      if (state !== 'ours') return state;
      const status = await this.client.get<{ status: string }>(await this.vmPath(vmid, '/status/current'));
      // PVE refuses to destroy a running VM and never stops it by itself.
      if (status.status === 'running') {
        await this.wait(await this.client.post<string>(await this.vmPath(vmid, '/status/stop')));
      }
      try {
        const upid = await this.client.delete<string>(await this.vmPath(vmid), {
          purge: true,
          'destroy-unreferenced-disks': true,
        });
        await this.wait(upid);
      } catch (err) {
        if (!isPveError(err, 'not-found')) throw err; // a concurrent destroy of ours won
      }
      await removeSnippet(this.options.snippetsDir, vmid);
      return 'destroyed';
    });
  }

  async snapshot(vm: VmRef, name: string): Promise<void> {
    return permanentIfPve(async () => {
      const badName = snapshotNameProblem(name);
      if (badName) throw new PermanentBackendError(badName);
      await this.requireOwned(vm);
      const { vmid, owner } = vm;
      try {
        const upid = await this.client.post<string>(await this.vmPath(vmid, '/snapshot'), {
          snapname: name,
          // Disk only: a RAM image costs the VM's memory in disk space, and a revert boots afresh anyway.
          vmstate: false,
          description: `agentlab: ${name} snapshot of job ${owner.jobId}`,
        });
        await this.wait(upid);
      } catch (err) {
        // Only this owner snapshots its VM, and clones copy no snapshots: it is an earlier attempt's.
        if (!isPveError(err, 'snapshot-exists')) throw err;
      }
    });
  }

  async rollback(vm: VmRef, name: string): Promise<void> {
    return permanentIfPve(async () => {
      await this.requireOwned(vm);
      const { vmid } = vm;
      // PVE's rollback task stops a running VM first (disk-only snapshot) and leaves it stopped (start=0).
      const path = (await this.vmPath(vmid)) + apiPath`/snapshot/${name}/rollback`;
      await this.wait(await this.client.post<string>(path));
    });
  }

  /**
   * Only VMs that carry the `agentlab` tag and an owner mark, both read from the VM's own config: a
   * foreign VM is never listed, nor one of ours whose clone never got its tags (its own workflow's
   * teardown destroys that one; a reconciler acting on this list must not guess).
   */
  async listOwned(): Promise<OwnedVm[]> {
    return permanentIfPve(async () => {
      const owned: OwnedVm[] = [];
      // This node's VMs only: another node's are its own worker's to reconcile (and only it can read their config).
      const ours = (await this.vms()).filter((v) => v.node === this.node && tagsOf(v.tags).includes(AGENTLAB_TAG));
      for (const vm of ours) {
        // The listing may be older than the config (the VMID destroyed and reused since): the config decides.
        const config = await this.config(vm.vmid);
        const mark = parseOwner(config?.description);
        if (mark && tagsOf(config?.tags).includes(AGENTLAB_TAG))
          owned.push({
            vmid: vm.vmid,
            jobId: mark.jobId,
            workflowId: mark.workflowId,
            running: vm.status === 'running',
          });
      }
      return owned;
    });
  }
}
