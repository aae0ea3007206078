// A test's own agentlab installation: config, data dir, worker processes and the CLI, on the shared server.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import YAML from 'yaml';
import { AesGcmCodec, dataConverter, loadCodecKey } from '../../common/codec';
import { describeQuery, type BackendKind, type JobDescription } from '../../common/contract';

const ROOT = join(__dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');
export const WORKER = join(ROOT, 'dist', 'worker', 'main.js');
export const SCRIPTED_AGENT = join(ROOT, 'examples', 'agents', 'scripted-agent.sh');

export function temporalAddress(): string {
  const address = process.env.AGENTLAB_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('AGENTLAB_TEST_TEMPORAL_ADDRESS is unset: the Jest globalSetup did not run');
  return address;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StackOptions {
  profiles?: Record<string, unknown>[];
  /** Share another stack's workflow task queue: two hosts of one deployment. */
  taskQueue?: string;
  node?: string;
  local?: { cloneDelay?: string; bootDelay?: string };
  /** worker.backends (default: local only). */
  backends?: BackendKind[];
  /** Further top-level config sections, e.g. `proxmox:`. */
  extraConfig?: Record<string, unknown>;
  /**
   * worker.admission. Default: room for dozens of sandboxes of any profile, since the suites hold many at once and
   * test other things; test/admission.test.ts sets a small capacity.
   */
  admission?: Record<string, unknown>;
  /** worker.reconcileInterval (default off: a test that wants the Schedule says so). */
  reconcileInterval?: string;
  /** Further temporal settings (the task queue is the stack's own; the address the shared server's unless given). */
  temporal?: {
    codec?: { keyFile: string; endpointListen?: string };
    continueAsNewAfterEvents?: number;
    /** The worker's and CLI's way to the shared server, e.g. a TLS proxy in front of it (the test's client goes direct). */
    address?: string;
    tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
    apiKeyFile?: string;
  };
  /** Further guestApi settings (listen is the stack's own). */
  guestApi?: Record<string, unknown>;
  /** Further environment for the worker and the CLI. */
  env?: Record<string, string>;
  /**
   * Run the worker in this network namespace (a "host" of test/cluster), its guest API on the namespace's own
   * address so that this process reaches it; the CLI stays in the test's namespace.
   */
  netns?: { name: string; ip: string };
}

export class TestStack {
  readonly home: string;
  readonly dataDir: string;
  readonly configPath: string;
  readonly node: string;
  readonly taskQueue: string;
  private guestPort = 0;
  metricsPort = 0;
  private readonly workers = new Set<ChildProcess>();
  workerLog = '';
  client!: Client;

  constructor(private readonly options: StackOptions = {}) {
    this.taskQueue = options.taskQueue ?? `agentlab-test-${randomBytes(4).toString('hex')}`;
    this.node = options.node ?? `t${randomBytes(3).toString('hex')}`;
    this.home = mkdtempSync(join(tmpdir(), 'agentlab-test-'));
    this.dataDir = join(this.home, 'data');
    this.configPath = join(this.home, 'config.yaml');
  }

  async init(): Promise<this> {
    this.guestPort = await freePort();
    this.metricsPort = await freePort();
    const config = {
      node: this.node,
      dataDir: this.dataDir,
      temporal: {
        ...this.options.temporal,
        address: this.options.temporal?.address ?? temporalAddress(),
        namespace: 'default',
        taskQueue: this.taskQueue,
      },
      worker: {
        backends: this.options.backends ?? ['local'],
        shutdownGraceTime: '5s',
        metricsListen: `127.0.0.1:${this.metricsPort}`,
        sdkMetricsListen: `127.0.0.1:${await freePort()}`,
        reconcileInterval: this.options.reconcileInterval ?? 'off',
        admission: this.options.admission ?? { cores: 256, memoryMb: 512 * 1024, cpuOvercommit: 1 },
      },
      guestApi: { ...this.options.guestApi, listen: `${this.listenIp}:${this.guestPort}` },
      vmidRange: { min: 7000, max: 7999 },
      // These suites test the workflow, not isolation: the unisolated sandbox keeps them fast and
      // independent of the host's network (test/local-isolation.test.ts covers namespaces).
      local: { isolation: 'none', ...this.options.local },
      profiles: [TEST_LOCAL_PROFILE, ...(this.options.profiles ?? [])],
      ...this.options.extraConfig,
    };
    writeFileSync(this.configPath, YAML.stringify(config));
    // With a codec key the test's own client reads what the worker writes, as the CLI does.
    const keyFile = this.options.temporal?.codec?.keyFile;
    this.client = new Client({
      connection: await Connection.connect({ address: temporalAddress() }),
      dataConverter: dataConverter(keyFile ? new AesGcmCodec(loadCodecKey(keyFile)) : undefined),
    });
    return this;
  }

  /** A copy of this stack's config file with `edit` applied (other temporal settings, other ports); its path. */
  configVariant(edit: (config: Record<string, Record<string, unknown>>) => void): string {
    const config = YAML.parse(readFileSync(this.configPath, 'utf8')) as Record<string, Record<string, unknown>>;
    edit(config);
    const path = join(this.home, `config-${randomBytes(4).toString('hex')}.yaml`);
    writeFileSync(path, YAML.stringify(config));
    return path;
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, AGENTLAB_CONFIG: this.configPath, AGENTLAB_LOG_LEVEL: 'info', ...this.options.env };
  }

  private get listenIp(): string {
    return this.options.netns?.ip ?? '127.0.0.1';
  }

  get guestApiUrl(): string {
    return `http://${this.listenIp}:${this.guestPort}`;
  }

  async startWorker(): Promise<ChildProcess> {
    // nsenter execs the worker: the child's pid is the worker's, so killWorkers kills the worker itself.
    const [command, args] = this.options.netns
      ? ['nsenter', [`--net=/var/run/netns/${this.options.netns.name}`, process.execPath, WORKER]]
      : [process.execPath, [WORKER]];
    const worker = spawn(command, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (d: Buffer) => (this.workerLog += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (this.workerLog += d.toString()));
    this.workers.add(worker);
    worker.once('exit', () => this.workers.delete(worker));
    await eventually(
      'the worker to serve its guest API',
      async () => (await fetch(`${this.guestApiUrl}/healthz`)).ok,
      60_000, // a loaded 2-core machine has taken over 30 s
    );
    return worker;
  }

  /** SIGKILL: no graceful shutdown, exactly what a crash looks like. */
  async killWorkers(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const exits = [...this.workers].map(
      (w) => new Promise((resolve) => (w.exitCode !== null ? resolve(null) : w.once('exit', resolve))),
    );
    for (const worker of this.workers) worker.kill(signal);
    await Promise.all(exits);
  }

  cli(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { ...this.env, ...options.env },
        cwd: options.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`agentlab ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, options.timeoutMs ?? 120_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  describe(jobId: string): Promise<JobDescription> {
    return this.client.workflow.getHandle(jobId).query(describeQuery);
  }

  async waitForState(
    jobId: string,
    predicate: (d: JobDescription) => boolean,
    what: string,
    timeoutMs = 60_000,
  ): Promise<JobDescription> {
    return eventually(
      `job ${jobId}: ${what}`,
      async () => {
        const d = await this.describe(jobId);
        return predicate(d) ? d : undefined;
      },
      timeoutMs,
    );
  }

  /** A job started with --detach whose agent sleeps 120 s, once its job is RUNNING. */
  async startSleepingJob(jobId: string, repo: string): Promise<JobDescription> {
    const started = await this.cli([
      ...['job', 'run', '--id', jobId, '--repo', repo, '--task', 'wait', '--detach'],
      ...['--agent-command', `SCRIPTED_AGENT_SLEEP=120 ${SCRIPTED_AGENT}`],
    ]);
    if (started.code !== 0) throw new Error(`job run ${jobId} failed: ${started.stderr}`);
    return this.waitForState(jobId, (d) => d.state === 'RUNNING' && d.jobStatus === 'RUNNING', 'RUNNING');
  }

  async waitForClose(jobId: string, timeoutMs = 90_000): Promise<void> {
    await eventually(
      `job ${jobId} to close`,
      async () => (await this.client.workflow.getHandle(jobId).describe()).status.name !== 'RUNNING',
      timeoutMs,
    );
  }

  /** Stops the workers and removes the stack's directory (`AGENTLAB_KEEP_TEST_DIRS=1` keeps it to look into). */
  async close(): Promise<void> {
    await this.killWorkers('SIGTERM');
    await this.client?.connection.close();
    killSandboxGroups(this.dataDir);
    // A run leaves hundreds of these otherwise (~6 MB each: data dir, repositories, sandboxes' files).
    if (process.env.AGENTLAB_KEEP_TEST_DIRS) return;
    try {
      rmSync(this.home, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      console.warn(`could not remove ${this.home}: ${(err as Error).message}`);
    }
  }
}

/**
 * A test that ends with a sandbox still up (a keepalive or bare one, a job cut short) would leave its runner
 * behind once the worker is gone: its boot shell leads a process group of its own, so that group goes.
 */
function killSandboxGroups(dataDir: string): void {
  const sandboxes = join(dataDir, 'sandboxes');
  if (!existsSync(sandboxes)) return;
  for (const entry of readdirSync(sandboxes)) {
    try {
      const { pid } = JSON.parse(readFileSync(join(sandboxes, entry, 'boot.json'), 'utf8')) as { pid: number };
      // Only the boot shell itself: a recorded pid may have been reused since.
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sandbox-boot')) process.kill(-pid, 'SIGKILL');
    } catch {
      // no boot record, or the sandbox is gone already
    }
  }
}

/** The `local` profile every test stack (end-to-end or in-process) starts from: quick to fail, quick to boot. */
export const TEST_LOCAL_PROFILE = {
  name: 'local',
  backend: 'local',
  ttl: '10m',
  provisioning: { attempts: 3, bootTimeout: '20s', bootstrapTimeout: '60s' },
  teardown: { attempts: 2 },
};

export interface Faults {
  neverReady?: boolean;
  guestRunnerBroken?: boolean;
  failDestroy?: boolean;
  workspaceDelayMs?: number;
}

/** Sets the local backend's fault injection file (read on every backend operation). */
export function setFaults(stack: TestStack, faults: Faults): void {
  mkdirSync(join(stack.dataDir, 'sandboxes'), { recursive: true });
  writeFileSync(join(stack.dataDir, 'sandboxes', 'faults.json'), JSON.stringify(faults));
}

export interface JournalEntry {
  op: 'clone' | 'destroy';
  vmid: number;
  jobId: string;
}

/** The local backend's record of every VM it really created or destroyed. */
export function journal(stack: TestStack, jobId?: string): JournalEntry[] {
  const path = join(stack.dataDir, 'sandboxes', 'journal.ndjson');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as JournalEntry)
    .filter((entry) => jobId === undefined || entry.jobId === jobId);
}

/** VMIDs whose sandbox directory still exists. */
export function liveSandboxes(stack: TestStack): number[] {
  const root = join(stack.dataDir, 'sandboxes');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

export { sleep };
