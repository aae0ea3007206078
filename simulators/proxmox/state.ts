// The simulated cluster: one node's VMs, tasks and locks, plus the timings and faults a test can change.
import { createHash, randomBytes } from 'node:crypto';
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
  config: Record<string, ConfigValue>;
  status: 'running' | 'stopped';
  startedAt?: number;
  /** Kept beside the config (PVE's `[snapname]` sections), so clone never copies them. */
  snapshots?: Map<string, SimSnapshot>;
}

/** Schema integer/boolean keys come back as JSON numbers in GET config (proxmox-api.md §2.3). */
const NUMERIC_KEYS = new Set(['cores', 'sockets', 'template', 'ciupgrade', 'onboot', 'protection', 'balloon']);

export function typedConfig(config: Record<string, ConfigValue>): Record<string, ConfigValue> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [key, NUMERIC_KEYS.has(key) ? Number(value) : value]),
  );
}

export interface Latencies {
  linkedCloneMs: number;
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
  /** How long an agent call blocks before `QEMU guest agent is not running` (PVE: 3 s guest-ping). */
  agentPingTimeoutMs: number;
  cloneFlockWaitMs: number;
  configFlockWaitMs: number;
  storageLockWaitMs: number;
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
}

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
  agentPingTimeoutMs: 30,
  cloneFlockWaitMs: 1000,
  configFlockWaitMs: 10_000,
  storageLockWaitMs: 10_000,
};

/** Timings reported for real hosts (proxmox-api.md §6), for the standalone simulator. */
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
  agentPingTimeoutMs: 3000,
  cloneFlockWaitMs: 1000,
  configFlockWaitMs: 10_000,
  storageLockWaitMs: 10_000,
};

export class SimState {
  readonly vms = new Map<number, SimVm>();
  readonly tasks: TaskTable;
  readonly flocks = new FlockTable();
  latency: Latencies;
  faults: Faults = { errorRate: 0, extraLatencyMs: 0, lockContention: 0, stealCloneTargets: 0 };
  /** What tests assert on: clones that really timed out on the modelled storage lock (not injected ones). */
  readonly stats = { storageLockTimeouts: 0 };
  /** Where guests' eth0 addresses come from; `loopback` when guests are host processes (GuestRunners). */
  guestNet: 'bridge' | 'loopback' = 'bridge';

  constructor(
    readonly node: string,
    latency: Partial<Latencies> = {},
  ) {
    this.tasks = new TaskTable(node);
    this.latency = { ...FAST_LATENCIES, ...latency };
  }

  digest(vm: SimVm): string {
    return createHash('sha1').update(JSON.stringify(vm.config)).digest('hex');
  }

  /** A MAC under Proxmox's default prefix BC:24:11, as clone gives every NIC. */
  static newMac(): string {
    return ['BC', '24', '11', ...[...randomBytes(3)].map((b) => b.toString(16).toUpperCase().padStart(2, '0'))].join(
      ':',
    );
  }
}
