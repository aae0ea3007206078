// The sandbox states, job statuses and the allowed-operations table: the one place both the workflow and the CLI read.

export const SANDBOX_STATES = [
  'REQUESTED',
  'PROVISIONING',
  'BOOTING',
  'READY',
  'RUNNING',
  'STOPPED',
  'TIMEOUT',
  'DESTROYED',
  'FAILED',
] as const;
export type SandboxState = (typeof SANDBOX_STATES)[number];

export const JOB_STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED'];
export const isTerminalJobStatus = (status: JobStatus): boolean => TERMINAL_JOB_STATUSES.includes(status);

export type SandboxOperation =
  'show' | 'logs' | 'destroy' | 'renew' | 'start' | 'stop' | 'revert' | 'snapshot' | 'restore' | 'shell' | 'ssh';

/**
 * The seed's table. `stop` and `revert` are not in the seed's table but its daemon allowed stop from
 * READY and RUNNING, and revert (to the `clean` snapshot) wherever a VM exists and is not booting;
 * we keep both. `destroy` in any other live state needs `--force`. User snapshots (`snapshot` saves one,
 * `restore` rolls back to one) need STOPPED, as in the original system, or `--force` on a live VM.
 * A person gets in (`shell` on the local backend, `ssh` on Proxmox) only where the guest runs and is up.
 */
const ALLOWED: Record<SandboxState, readonly SandboxOperation[]> = {
  REQUESTED: ['show', 'logs'],
  PROVISIONING: ['show', 'logs'],
  BOOTING: ['show', 'logs'],
  READY: ['show', 'logs', 'destroy', 'stop', 'revert', 'shell', 'ssh'],
  RUNNING: ['show', 'logs', 'destroy', 'renew', 'stop', 'revert', 'shell', 'ssh'],
  STOPPED: ['show', 'logs', 'start', 'destroy', 'revert', 'snapshot', 'restore'],
  TIMEOUT: ['show', 'logs'],
  DESTROYED: ['show'],
  FAILED: ['show', 'logs'],
};

/** Operations that `--force` unlocks, per state (DESIGN: destroy in TIMEOUT/FAILED/any with --force). */
const FORCE_ALLOWED: Partial<Record<SandboxState, readonly SandboxOperation[]>> = {
  REQUESTED: ['destroy'],
  PROVISIONING: ['destroy'],
  BOOTING: ['destroy'],
  READY: ['snapshot', 'restore'],
  RUNNING: ['snapshot', 'restore'],
  TIMEOUT: ['destroy'],
  FAILED: ['destroy'],
};

/** Operations that would pull the disk from under a job's agent: refused while the job runs, unless `--force`. */
const FORCE_WHILE_JOB_RUNS: readonly SandboxOperation[] = ['revert'];

export function statesAllowing(operation: SandboxOperation): SandboxState[] {
  return SANDBOX_STATES.filter((state) => ALLOWED[state].includes(operation));
}

/**
 * Returns undefined when allowed, else a message naming the state, the allowed states and any hint.
 * `jobRunning`: the sandbox's job (not a bare sandbox's lifetime) has status RUNNING.
 */
export function operationRejection(
  state: SandboxState,
  operation: SandboxOperation,
  options: { force?: boolean; jobRunning?: boolean } = {},
): string | undefined {
  if (ALLOWED[state].includes(operation)) {
    if (!options.jobRunning || options.force || !FORCE_WHILE_JOB_RUNS.includes(operation)) return undefined;
    return `cannot ${operation} sandbox in state ${state} while its job is RUNNING: the agent would lose its work; use --force to override`;
  }
  const forceable = FORCE_ALLOWED[state]?.includes(operation) ?? false;
  if (forceable && options.force) return undefined;
  const allowedIn = statesAllowing(operation);
  const hint = forceable ? '; use --force to override' : '';
  return `cannot ${operation} sandbox in state ${state}: ${operation} is allowed only in ${allowedIn.join(', ')}${hint}`;
}
