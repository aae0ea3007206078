// The `proxmox` backend: a sandbox is a linked clone of a cloud-init template, marked as ours by tags and description.
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Owner, ResolvedProfile } from '../../common/contract';
import {
  PermanentBackendError,
  type CloneJob,
  type DestroyOutcome,
  type GuestJob,
  type OwnedVm,
  type SandboxBackend,
} from '../contract';
import { apiPath, type ProxmoxClient } from './client';
import { isPveError, PveError } from './errors';
import { AGENTLAB_TAG, isOwnedBy, ownerDescription, ownerTag, parseOwner, tagsOf, vmName, type VmLabel } from './marks';
import { workflowWebUiUrl } from '../../common/web-ui';
import { KeyedSemaphore } from './semaphore';
import { AGENT_FORMAT, isCloudInitVolume, NET_FORMAT } from '../../common/property-string';
import { bootDisk, driveEntries, GIB, readProperty, templateDiskStorage, type VmConfig } from './drives';
import { snapshotNameProblem } from '../../common/snapshot-names';
import { removeSnippet, snippetName, writeSnippet } from './snippet';
import { isWorkspaceDrive, ProxmoxWorkspaces, WORKSPACE_DISK } from './workspaces';
import { WORKSPACE_MOUNT } from '../../common/workspace';

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

interface Resource {
  vmid: number;
  status: string;
  tags?: string;
  node: string;
}

/** The VMID was taken by someone else between allocate and clone: the next provisioning attempt picks again. */
export class VmidConflictError extends Error {
  override name = 'VmidConflict';
}

/** How long an allocated but not yet cloned VMID stays reserved inside this worker. */
const PENDING_TTL_MS = 10 * 60_000;

export class ProxmoxBackend implements SandboxBackend {
  readonly kind = 'proxmox' as const;
  /** vmid → owner, so concurrent allocations in this process never hand out one VMID twice. */
  private readonly pending = new Map<number, { key: string; attempt: number; at: number }>();
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

  constructor(private readonly options: ProxmoxBackendOptions) {
    this.cloneSlots = new KeyedSemaphore(options.cloneConcurrency ?? 2);
    this.workspaces = new ProxmoxWorkspaces({
      client: options.client,
      node: options.node,
      storage: options.storage ?? 'local-lvm',
      wait: (upid) => this.wait(upid),
      // The holder's VMID is allocated as a job's is, keyed by the workspace workflow.
      freeVmid: (workspace) =>
        this.allocate({ jobId: `workspace-${workspace.name}`, workflowId: workspace.workflowId }, 0),
      forgetVmid: (vmid) => this.pending.delete(vmid),
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

  private async vmPath(vmid: number, rest = ''): Promise<string> {
    return apiPath`/nodes/${this.node}/qemu/${vmid}` + rest;
  }

  private async wait(upid: string): Promise<void> {
    await this.client.waitTask(upid, {
      onPoll: this.options.onPoll,
      timeoutMs: this.options.taskTimeoutMs,
      initialIntervalMs: this.options.pollIntervalMs,
    });
  }

  private async config(vmid: number): Promise<VmConfig | undefined> {
    try {
      return await this.client.get<VmConfig>(await this.vmPath(vmid, '/config'));
    } catch (err) {
      if (isPveError(err, 'not-found')) return undefined;
      throw err;
    }
  }

  private async vms(): Promise<Resource[]> {
    return this.client.get<Resource[]>('/cluster/resources', { type: 'vm' });
  }

  /** Errors retrying cannot fix (parameters, permissions, missing template) keep Proxmox's text but stop retries. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof PveError && !err.retryable) throw new PermanentBackendError(err.message);
      throw err;
    }
  }

  async allocate(owner: Owner, attempt: number): Promise<number> {
    return this.guard(async () => {
      const key = owner.workflowId;
      const vms = await this.vms();
      const tag = ownerTag(owner.workflowId);
      for (const vm of vms.filter((v) => tagsOf(v.tags).includes(tag))) {
        const mark = parseOwner((await this.config(vm.vmid))?.description);
        if (mark?.workflowId === owner.workflowId && mark.attempt === attempt) return vm.vmid; // a retry after a crash
      }
      const now = Date.now();
      for (const [vmid, p] of this.pending) {
        if (now - p.at > PENDING_TTL_MS) this.pending.delete(vmid);
        else if (p.key === key && p.attempt === attempt) return vmid;
      }
      const used = new Set(vms.map((v) => v.vmid));
      const { min, max } = this.options.vmidRange;
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
    });
  }

  async clone(
    vmid: number,
    profile: ResolvedProfile,
    owner: Owner,
    attemptOfCall?: number,
    job: CloneJob = {},
  ): Promise<void> {
    return this.guard(async () => {
      // From the call: a worker restarted since the allocation has no pending entry and would mark attempt 0.
      const attempt = attemptOfCall ?? this.pending.get(vmid)?.attempt ?? 0;
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
          this.pending.delete(vmid);
          throw new VmidConflictError(`VMID ${vmid} was taken by another clone (${err.pveMessage}); allocate again`);
        }
        throw err;
      }
      await this.markOwned(vmid, owner);
      this.pending.delete(vmid);
    });
  }

  /** True when the VM exists and this owner created it (a retried clone): finishes marking it. */
  private async adoptExisting(vmid: number, owner: Owner): Promise<boolean> {
    const config = await this.configAfterClone(vmid);
    if (!config) return false;
    if (parseOwner(config.description)?.workflowId !== owner.workflowId) {
      this.pending.delete(vmid);
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
  async validateTemplate(templateVmid: number): Promise<VmConfig> {
    let config: VmConfig | undefined;
    try {
      config = await this.client.get<VmConfig>(await this.vmPath(templateVmid, '/config'));
    } catch (err) {
      if (isPveError(err, 'not-found')) {
        throw new PermanentBackendError(`template VM ${templateVmid} is missing: ${err.pveMessage}`);
      }
      throw err;
    }
    const problems: string[] = [];
    if (Number(config.template) !== 1) problems.push('it is not a template (qm template)');
    const agent = readProperty(config.agent ?? '0', AGENT_FORMAT);
    if (typeof agent === 'string') problems.push(`its agent setting cannot be read (${agent})`);
    else if (agent.enabled !== '1') problems.push('the QEMU guest agent is not enabled (agent: enabled=1)');
    if (!driveEntries(config).some(([, drive]) => isCloudInitVolume(drive.file))) {
      problems.push('it has no cloud-init drive');
    }
    if (problems.length > 0) {
      throw new PermanentBackendError(`template VM ${templateVmid} cannot be used: ${problems.join('; ')}`);
    }
    return config;
  }

  /** Start, stop and configure act only on VMs carrying our tag: a colliding foreign VMID is never touched. */
  private async requireOurs(vmid: number): Promise<VmConfig> {
    const config = await this.config(vmid);
    if (!config) throw new PermanentBackendError(`VM ${vmid} does not exist`);
    if (!tagsOf(config.tags).includes(AGENTLAB_TAG) || !parseOwner(config.description)) {
      throw new PermanentBackendError(`VM ${vmid} is not an agentlab sandbox; refusing to touch it`);
    }
    return config;
  }

  async configure(vmid: number, profile: ResolvedProfile, job: GuestJob): Promise<{ tokenHash: string }> {
    return this.guard(async () => {
      if (job.localRepo) {
        throw new PermanentBackendError(
          `${job.localRepo.path} is a repository on a host, which only the local backend can hand to a sandbox`,
        );
      }
      const config = await this.requireOurs(vmid);
      if (profile.diskGb !== undefined) await this.growBootDisk(vmid, config, profile, profile.diskGb);
      const token = randomBytes(32).toString('hex');
      // attachWorkspace ran before configure: the workspace's disk is in the config from the first boot.
      const workspace = isWorkspaceDrive(config[WORKSPACE_DISK]) ? { workspace: WORKSPACE_MOUNT } : {};
      await writeSnippet(
        this.options.snippetsDir,
        { controllerUrl: job.controllerUrl, jobId: job.jobId, vmid, token, ...workspace },
        profile.sshAuthorizedKeys,
      );
      await this.client.put(await this.vmPath(vmid, '/config'), {
        cores: profile.cores,
        memory: String(profile.memoryMb),
        net0: `virtio,bridge=${this.options.bridge ?? 'vmbr1'}`,
        cicustom: `user=${this.options.snippetStorage ?? 'local'}:snippets/${snippetName(vmid)}`,
        ciupgrade: false, // a package upgrade on first boot only slows the sandbox down
      });
      return { tokenHash: createHash('sha256').update(token).digest('hex') };
    });
  }

  /**
   * Grows the clone's boot disk to the profile's `diskGb` (an absolute size) before its first boot, when
   * cloud-init's growpart still extends the root filesystem over it. A retried configure finds the disk
   * at that size already and leaves it: Proxmox accepts an equal size as a no-op, but a task is saved.
   * A size below the template's is refused by Proxmox ("shrinking disks is not supported"), and by us for good.
   */
  private async growBootDisk(vmid: number, config: VmConfig, profile: ResolvedProfile, diskGb: number): Promise<void> {
    const disk = bootDisk(config);
    if (!disk) {
      throw new PermanentBackendError(
        `profile ${profile.name} sets resources.diskGb, but VM ${vmid} (template ${profile.templateVmid}) has no boot disk`,
      );
    }
    if (disk.sizeBytes === diskGb * GIB) return;
    try {
      const upid = await this.client.put<string>(await this.vmPath(vmid, '/resize'), {
        disk: disk.key,
        size: `${diskGb}G`,
      });
      await this.wait(upid);
    } catch (err) {
      // Only the refused shrink is the profile's fault; any other failure keeps its own text and retry decision.
      if (!(err instanceof PveError) || disk.sizeBytes <= diskGb * GIB) throw err;
      throw new PermanentBackendError(
        `profile ${profile.name} asks for a ${diskGb}G root disk, but template ${profile.templateVmid}'s ` +
          `boot disk (${disk.key}) is ${disk.size}: Proxmox refused to resize it: ${err.pveMessage}`,
      );
    }
  }

  async start(vmid: number): Promise<void> {
    return this.guard(async () => {
      await this.requireOurs(vmid);
      try {
        await this.wait(await this.client.post<string>(await this.vmPath(vmid, '/status/start')));
      } catch (err) {
        if (!isPveError(err, 'already-running')) throw err; // a retried start
      }
    });
  }

  /**
   * The IPv4 address of the guest's net0, found by its MAC (which Proxmox wrote into net0): a guest may bring
   * up docker0 or another bridge before eth0 has its lease, and only net0 is on vmbr1. Link-local addresses
   * (169.254/16) are what an interface has before DHCP answers; they are never the guest's address.
   */
  async guestAddress(vmid: number): Promise<string | undefined> {
    return this.guard(async () => {
      const config = await this.config(vmid);
      if (!config) throw new PermanentBackendError(`VM ${vmid} does not exist`);
      const net0 = readProperty(config.net0, NET_FORMAT);
      const mac = typeof net0 === 'string' ? undefined : net0.macaddr?.toLowerCase();
      if (!mac) throw new PermanentBackendError(`VM ${vmid} has no net0 with a MAC address (net0: ${config.net0})`);
      let reply: {
        result?: {
          name: string;
          'hardware-address'?: string;
          'ip-addresses'?: { 'ip-address': string; 'ip-address-type': string }[];
        }[];
      };
      try {
        reply = await this.client.get(await this.vmPath(vmid, '/agent/network-get-interfaces'));
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
    });
  }

  async stop(vmid: number): Promise<void> {
    return this.guard(async () => {
      await this.requireOurs(vmid);
      await this.wait(await this.client.post<string>(await this.vmPath(vmid, '/status/stop')));
    });
  }

  async deleteBootstrap(vmid: number): Promise<void> {
    await removeSnippet(this.options.snippetsDir, vmid);
  }

  async destroy(vmid: number, owner: Owner): Promise<DestroyOutcome> {
    return this.guard(async () => {
      // A clone of ours that is still running (its earlier activity attempt failed while PVE went on)
      // carries no mark yet: judging it now would call it foreign and leak it once the clone finishes.
      const config = await this.configAfterClone(vmid);
      if (!config) return 'absent';
      if (!isOwnedBy(config, owner)) return 'not-ours';
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

  /**
   * Snapshot and rollback take the owner as destroy does: they act only on a VM whose description names
   * this workflow, so a foreign VM (or another job's) on a reused VMID is refused, untouched.
   */
  private async requireOwnedBy(vmid: number, owner: Owner): Promise<void> {
    const config = await this.config(vmid);
    if (!config) throw new PermanentBackendError(`VM ${vmid} does not exist`);
    if (!isOwnedBy(config, owner)) {
      throw new PermanentBackendError(`VM ${vmid} is not the sandbox of ${owner.workflowId}; refusing to touch it`);
    }
  }

  async snapshot(vmid: number, name: string, owner: Owner): Promise<void> {
    return this.guard(async () => {
      const badName = snapshotNameProblem(name);
      if (badName) throw new PermanentBackendError(badName);
      await this.requireOwnedBy(vmid, owner);
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

  async rollback(vmid: number, name: string, owner: Owner): Promise<void> {
    return this.guard(async () => {
      await this.requireOwnedBy(vmid, owner);
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
    return this.guard(async () => {
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
