// The simulated cluster: its nodes and storages, the VMs, tasks and locks, and the timings and faults a test can change.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { defaultStorages, type SimStorage, type StorageType } from './storage';
import { FlockTable, TaskTable } from './tasks';

export type ConfigValue = string | number;

/** A snapshot. The simulator has no disks: the config it copies stands for them, and rollback restores it. */
export interface SimSnapshot {
  name: string;
  description?: string;
  snaptime: number;
  vmstate: boolean;
  /** The VM's `parent` when the snapshot was taken. */
  parent?: string;
  /** While its task runs: `prepare` (being taken) or `delete`. */
  snapstate?: 'prepare' | 'delete';
  config: Record<string, ConfigValue>;
}

export interface SimVm {
  vmid: number;
  /** The node whose /etc/pve/nodes/<node>/qemu-server holds the config: only that node answers for the VM. */
  node: string;
  config: Record<string, ConfigValue>;
  status: 'running' | 'stopped';
  startedAt?: number;
  /** QMP's status while running: `paused` after suspend. */
  qmpstatus?: 'running' | 'paused';
  /** Kept beside the config (PVE's `[snapname]` sections), so clone never copies them. */
  snapshots?: Map<string, SimSnapshot>;
  /** The `[PENDING]` section: changes a running VM cannot take at once, applied at its next start. */
  pending?: Record<string, ConfigValue>;
  pendingDelete?: string[];
  /** Base volumes (`local-lvm:base-9000-disk-0`) this VM's linked clones depend on: their template cannot go. */
  linkedTo?: string[];
  /** The `[special:cloudinit]` section: values as the cloud-init drive last saw them, and keys added since. */
  cloudinit?: { recorded: Record<string, ConfigValue>; added: string[] };
}

/**
 * Schema integer/boolean/number keys come back as JSON numbers in GET config (qemu-server check_type);
 * property strings (memory, net0, agent) stay strings. Filled from the schema digest by qemu.ts.
 */
export const NUMERIC_CONFIG_KEYS = new Set<string>();

export function typedConfig(config: Record<string, ConfigValue>): Record<string, ConfigValue> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [key, NUMERIC_CONFIG_KEYS.has(key) ? Number(value) : value]),
  );
}

/** How long a storage holds its lock for one volume step (see data/storage-locks.json for which steps take it). */
export interface VolumeStepLatency {
  /** clone_image: a thin snapshot, a zfs clone, a qcow2 overlay. */
  cloneImageMs: number;
  /** alloc_image: a new volume (the cloud-init drive of every clone, every disk of a full clone). */
  allocImageMs: number;
  /** free_image: removing a volume on destroy. */
  freeImageMs: number;
}

export interface Latencies {
  /** A whole linked clone task; the storage lock covers only its volume steps (storageSteps). */
  linkedCloneMs: number;
  /** A whole full clone task; its copy (qemu-img convert) runs outside the storage lock. */
  fullCloneMs: number;
  startMs: number;
  stopMs: number;
  destroyMs: number;
  /** Volume work of the snapshot tasks, while the config carries their lock. */
  snapshotMs: number;
  rollbackMs: number;
  deleteSnapshotMs: number;
  /** From start until the guest agent answers (the guest's boot). */
  bootMs: number;
  /** After the agent answers, how long eth0 has only its link-local address (DHCP not done yet). */
  linkLocalMs: number;
  /** How long an agent call blocks before `QEMU guest agent is not running` (PVE: 3 s guest-ping). */
  agentPingTimeoutMs: number;
  cloneFlockWaitMs: number;
  configFlockWaitMs: number;
  storageLockWaitMs: number;
  storageSteps: Record<StorageType, VolumeStepLatency>;
}

export interface Faults {
  /** Probability that a request answers `596 Connection timed out` (retryable, nothing done). */
  errorRate: number;
  /** Added to every request. */
  extraLatencyMs: number;
  /** Probability that a clone task fails on the storage lock (catalog clone-storage-lock-timeout). */
  lockContention: number;
  /** The next N clones find their target VMID just taken by somebody else's VM (a race with another user). */
  stealCloneTargets: number;
  /** Probability that a request on a VM answers 500 with the config flock's timeout (another writer held it). */
  configLockContention?: number;
  /** Probability that a task runs `slowTaskMs` longer than its latency says (a busy node). */
  slowTaskRate?: number;
  slowTaskMs?: number;
}

/** A clone that finished or a destroy that removed a VM: what a test counts per owner after chaos. */
export interface LedgerEntry {
  op: 'clone' | 'destroy' | 'move-disk';
  vmid: number;
  description?: string;
  /** destroy: the volumes freed with the VM. */
  volumes?: string[];
  /** move-disk: the VM the volume went to, its volume id before and after the rename. */
  target?: number;
  volume?: string;
  renamedTo?: string;
}

const FAST_STEPS: VolumeStepLatency = { cloneImageMs: 5, allocImageMs: 5, freeImageMs: 5 };

export const FAST_LATENCIES: Latencies = {
  linkedCloneMs: 30,
  fullCloneMs: 80,
  startMs: 20,
  stopMs: 20,
  destroyMs: 20,
  snapshotMs: 30,
  rollbackMs: 30,
  deleteSnapshotMs: 20,
  bootMs: 100,
  linkLocalMs: 0,
  agentPingTimeoutMs: 30,
  cloneFlockWaitMs: 1000,
  configFlockWaitMs: 10_000,
  storageLockWaitMs: 10_000,
  storageSteps: { lvmthin: FAST_STEPS, zfspool: FAST_STEPS, dir: FAST_STEPS },
};

/**
 * Timings reported for real hosts (proxmox-api.md §6), for the standalone simulator and the benchmark. The
 * volume steps are estimates of one lvcreate/zfs/qemu-img call each (nobody has published a measurement):
 * lvmthin also lists the VG to find a free name, and a zvol waits for its /dev link before it is done.
 */
export const REALISTIC_LATENCIES: Latencies = {
  linkedCloneMs: 2000,
  fullCloneMs: 5000,
  startMs: 1500,
  stopMs: 1000,
  destroyMs: 1500,
  snapshotMs: 1500,
  rollbackMs: 2000,
  deleteSnapshotMs: 1000,
  bootMs: 25_000,
  linkLocalMs: 2000,
  agentPingTimeoutMs: 3000,
  cloneFlockWaitMs: 1000,
  configFlockWaitMs: 10_000,
  storageLockWaitMs: 10_000,
  storageSteps: {
    lvmthin: { cloneImageMs: 400, allocImageMs: 300, freeImageMs: 300 },
    zfspool: { cloneImageMs: 150, allocImageMs: 400, freeImageMs: 200 },
    dir: { cloneImageMs: 50, allocImageMs: 50, freeImageMs: 20 },
  },
};

/** What a caller may override: any latency, and any volume step of any storage type. */
export type LatencyOverrides = Partial<Omit<Latencies, 'storageSteps'>> & {
  storageSteps?: Partial<Record<StorageType, Partial<VolumeStepLatency>>>;
};

/** Latencies merged over a base: `storageSteps` per storage type and step, the rest key by key. */
export function mergeLatencies(base: Latencies, over: LatencyOverrides = {}): Latencies {
  const steps = { ...base.storageSteps };
  for (const [type, value] of Object.entries(over.storageSteps ?? {}) as [StorageType, VolumeStepLatency][]) {
    steps[type] = { ...steps[type], ...value };
  }
  return { ...base, ...over, storageSteps: steps };
}

/** An interface the guest agent reports besides lo and eth0 (e.g. docker0, up before eth0 has DHCP). */
export interface ExtraGuestInterface {
  name: string;
  mac: string;
  ipv4: string;
  prefix: number;
}

export class SimState {
  readonly nodes: string[];
  readonly storages: SimStorage[];
  readonly vms = new Map<number, SimVm>();
  readonly tasks = new TaskTable();
  readonly flocks = new FlockTable();
  latency: Latencies;
  faults: Faults = { errorRate: 0, extraLatencyMs: 0, lockContention: 0, stealCloneTargets: 0 };
  /** What tests assert on: clones that really timed out on the modelled storage lock (not injected ones). */
  readonly stats = { storageLockTimeouts: 0, storageLockHeldMs: 0, requests: 0, injectedFaults: 0 };
  /** Every clone that completed and every destroy that removed a VM, in order. */
  readonly ledger: LedgerEntry[] = [];
  /**
   * Where a volume's contents live when a test wants disks with data (off by default: disks are names):
   * one folder per volume id, renamed with the volume (move_disk) and removed when it is freed.
   */
  volumeDataRoot?: string;
  /** Where guests' eth0 addresses come from; `loopback` when guests are host processes (GuestRunners). */
  guestNet: 'bridge' | 'loopback' = 'bridge';
  /** Interfaces every guest reports before eth0 once booted, as a host with Docker would. */
  extraGuestInterfaces: ExtraGuestInterface[] = [];
  /** The datacenter's mac_prefix (datacenter.cfg); BC:24:11 on installs since PVE 8.1. */
  macPrefix = 'BC:24:11';

  constructor(nodes: string[], latency: LatencyOverrides = {}) {
    if (nodes.length === 0) throw new Error('a cluster needs at least one node');
    this.nodes = nodes;
    this.storages = defaultStorages();
    this.latency = mergeLatencies(FAST_LATENCIES, latency);
  }

  /** The first node: what a single-node simulator calls its node. */
  get node(): string {
    return this.nodes[0]!;
  }

  storage(id: string): SimStorage | undefined {
    return this.storages.find((s) => s.id === id);
  }

  /** The folder standing for volume `volid`'s contents (undefined without volumeDataRoot). */
  volumeDir(volid: string): string | undefined {
    return this.volumeDataRoot && join(this.volumeDataRoot, volid.replace(/[:/]/g, '_'));
  }

  async renameVolumeData(from: string, to: string): Promise<void> {
    const [a, b] = [this.volumeDir(from), this.volumeDir(to)];
    if (!a || !b) return;
    await fs.rename(a, b).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err; // a volume nothing was ever written to
    });
  }

  async freeVolumeData(volid: string): Promise<void> {
    const dir = this.volumeDir(volid);
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }

  digest(vm: SimVm): string {
    return createHash('sha1')
      .update(JSON.stringify([vm.config, vm.pending, vm.pendingDelete]))
      .digest('hex');
  }

  /** pve-common random_ether_addr: random, unicast and locally administered, then the datacenter's prefix. */
  newMac(): string {
    const bytes = [...randomBytes(6)];
    bytes[0] = (bytes[0]! & 0xfe) | 2;
    const addr = bytes.map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
    return this.macPrefix.toUpperCase() + addr.slice(this.macPrefix.length);
  }
}
