// The `local` backend: a sandbox is a directory plus a detached guest-runner process on this host.
// Isolation (namespaces, bridge, nftables) is layered on in a later step; the lifecycle is final.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, openSync, closeSync, constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import type { Owner, ResolvedProfile } from '../common/contract';
import { agentRunnerPath } from '../common/paths';
import { PermanentBackendError, type DestroyOutcome, type OwnedVm, type SandboxBackend } from './types';

export interface LocalBackendOptions {
  dataDir: string;
  vmidRange: { min: number; max: number };
  /** Emulated VM latencies (demos, tests of crash windows). */
  cloneDelayMs?: number;
  bootDelayMs?: number;
}

interface OwnerRecord extends Owner {
  attempt: number;
  createdAt: string;
}

interface BootRecord {
  pid: number;
  startedAt: number;
}

/** Fault injection for tests and drills: `<dataDir>/sandboxes/faults.json`, read on every operation. */
interface Faults {
  /** The guest never reports an address (a VM that never finishes booting). */
  neverReady?: boolean;
  /** The VM boots but its agent-runner service is broken: nobody claims the bootstrap. */
  guestRunnerBroken?: boolean;
  /** Destroy fails (a backend outage during teardown). */
  failDestroy?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class LocalBackend implements SandboxBackend {
  readonly kind = 'local' as const;
  private readonly root: string;

  constructor(private readonly options: LocalBackendOptions) {
    this.root = join(options.dataDir, 'sandboxes');
  }

  private dir(vmid: number): string {
    return join(this.root, String(vmid));
  }

  private async faults(): Promise<Faults> {
    try {
      return JSON.parse(await fs.readFile(join(this.root, 'faults.json'), 'utf8')) as Faults;
    } catch {
      return {};
    }
  }

  /** Append-only record of real creations and destructions; lets operators and tests audit VM counts. */
  private async journal(op: 'clone' | 'destroy', vmid: number, jobId: string): Promise<void> {
    const line = JSON.stringify({ op, vmid, jobId, at: new Date().toISOString() }) + '\n';
    await fs.appendFile(join(this.root, 'journal.ndjson'), line);
  }

  private async readOwner(vmid: number): Promise<OwnerRecord | undefined> {
    try {
      return JSON.parse(await fs.readFile(join(this.dir(vmid), 'owner.json'), 'utf8')) as OwnerRecord;
    } catch {
      return undefined;
    }
  }

  private async vmids(): Promise<number[]> {
    await fs.mkdir(this.root, { recursive: true });
    const entries = await fs.readdir(this.root);
    return entries.filter((e) => /^\d+$/.test(e)).map(Number);
  }

  async allocate(owner: Owner, attempt: number): Promise<number> {
    for (const vmid of await this.vmids()) {
      const record = await this.readOwner(vmid);
      if (record?.workflowId === owner.workflowId && record.attempt === attempt) return vmid; // a retry after a crash
    }
    // Reserve atomically: a directory renamed into place cannot collide with a concurrent allocator.
    const staging = await fs.mkdtemp(join(this.root, '.allocating-'));
    const record: OwnerRecord = { ...owner, attempt, createdAt: new Date().toISOString() };
    await fs.writeFile(join(staging, 'owner.json'), JSON.stringify(record));
    try {
      for (let vmid = this.options.vmidRange.min; vmid <= this.options.vmidRange.max; vmid++) {
        try {
          await fs.rename(staging, this.dir(vmid));
          return vmid;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        }
      }
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
    throw new Error(`no free VMID in ${this.options.vmidRange.min}-${this.options.vmidRange.max}`);
  }

  private async requireOwned(vmid: number, owner?: Owner): Promise<OwnerRecord> {
    const record = await this.readOwner(vmid);
    if (!record) throw new PermanentBackendError(`sandbox ${vmid} does not exist`);
    if (owner && record.workflowId !== owner.workflowId) {
      throw new PermanentBackendError(`sandbox ${vmid} belongs to ${record.workflowId}, not ${owner.workflowId}`);
    }
    return record;
  }

  async clone(vmid: number, _profile: ResolvedProfile, owner: Owner): Promise<void> {
    await this.requireOwned(vmid, owner);
    const marker = join(this.dir(vmid), 'cloned');
    if (await exists(marker)) return;
    if (this.options.cloneDelayMs) await sleep(this.options.cloneDelayMs);
    for (const sub of ['work', 'state', 'cloud-init']) {
      await fs.mkdir(join(this.dir(vmid), sub), { recursive: true, mode: 0o700 });
    }
    await fs.writeFile(marker, new Date().toISOString());
    await this.journal('clone', vmid, owner.jobId);
  }

  async configure(
    vmid: number,
    _profile: ResolvedProfile,
    job: { jobId: string; controllerUrl: string },
  ): Promise<{ tokenHash: string }> {
    await this.requireOwned(vmid);
    const token = randomBytes(32).toString('hex');
    const bootstrap = { controllerUrl: job.controllerUrl, jobId: job.jobId, vmid, token, allowLocalRepos: true };
    const path = join(this.dir(vmid), 'cloud-init', 'bootstrap.json');
    await fs.writeFile(path, JSON.stringify(bootstrap), { mode: 0o600 });
    return { tokenHash: createHash('sha256').update(token).digest('hex') };
  }

  private async bootRecord(vmid: number): Promise<BootRecord | undefined> {
    try {
      const record = JSON.parse(await fs.readFile(join(this.dir(vmid), 'boot.json'), 'utf8')) as BootRecord;
      return isAlive(record.pid) ? record : undefined;
    } catch {
      return undefined;
    }
  }

  async start(vmid: number): Promise<void> {
    await this.requireOwned(vmid);
    if (await this.bootRecord(vmid)) return; // already running
    const dir = this.dir(vmid);
    const console = openSync(
      join(dir, 'console.log'),
      fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT,
    );
    const bootDelaySeconds = (this.options.bootDelayMs ?? 0) / 1000;
    // `exec` keeps one pid from "power on" to the runner; the sleep emulates the boot.
    const script = 'sleep "$1"; shift; exec "$@"';
    const runner = (await this.faults()).guestRunnerBroken
      ? ['sleep', '2147483647']
      : [
          process.execPath,
          agentRunnerPath(),
          '--bootstrap',
          join(dir, 'cloud-init', 'bootstrap.json'),
          '--state-dir',
          join(dir, 'state'),
          '--work-dir',
          join(dir, 'work'),
        ];
    const child = spawn('/bin/sh', ['-c', script, 'sandbox-boot', String(bootDelaySeconds), ...runner], {
      detached: true,
      stdio: ['ignore', console, console],
      cwd: dir,
      env: sandboxEnv(),
    });
    closeSync(console);
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start sandbox ${vmid}`);
    const record: BootRecord = { pid: child.pid, startedAt: Date.now() };
    await fs.writeFile(join(dir, 'boot.json'), JSON.stringify(record));
  }

  async guestAddress(vmid: number): Promise<string | undefined> {
    await this.requireOwned(vmid);
    if ((await this.faults()).neverReady) return undefined;
    const boot = await this.bootRecord(vmid);
    if (!boot) return undefined;
    return Date.now() - boot.startedAt >= (this.options.bootDelayMs ?? 0) ? '127.0.0.1' : undefined;
  }

  async stop(vmid: number): Promise<void> {
    await this.requireOwned(vmid);
    await this.killProcesses(vmid);
    await fs.rm(join(this.dir(vmid), 'boot.json'), { force: true });
  }

  async deleteBootstrap(vmid: number): Promise<void> {
    await fs.rm(join(this.dir(vmid), 'cloud-init', 'bootstrap.json'), { force: true });
  }

  async destroy(vmid: number, owner: Owner): Promise<DestroyOutcome> {
    const record = await this.readOwner(vmid);
    if (!record) return (await exists(this.dir(vmid))) ? 'not-ours' : 'absent';
    if (record.workflowId !== owner.workflowId) return 'not-ours';
    if ((await this.faults()).failDestroy) throw new Error(`injected fault: destroy of sandbox ${vmid} failed`);
    await this.killProcesses(vmid);
    await fs.rm(this.dir(vmid), { recursive: true, force: true });
    await this.journal('destroy', vmid, record.jobId);
    return 'destroyed';
  }

  async listOwned(): Promise<OwnedVm[]> {
    const owned: OwnedVm[] = [];
    for (const vmid of await this.vmids()) {
      const record = await this.readOwner(vmid);
      if (record)
        owned.push({
          vmid,
          jobId: record.jobId,
          workflowId: record.workflowId,
          running: !!(await this.bootRecord(vmid)),
        });
    }
    return owned;
  }

  /** Powers the sandbox off: the runner's process group and the agent's, which the runner detaches. */
  private async killProcesses(vmid: number): Promise<void> {
    const groups: number[] = [];
    const boot = await this.bootRecord(vmid);
    if (boot) groups.push(boot.pid);
    const agentPid = Number(
      (await fs.readFile(join(this.dir(vmid), 'state', 'agent.pid'), 'utf8').catch(() => '')).trim(),
    );
    if (agentPid > 0) groups.push(agentPid);
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      for (const pid of groups) killGroup(pid, signal);
      const deadline = Date.now() + 2000;
      while (groups.some(isAlive) && Date.now() < deadline) await sleep(50);
      if (!groups.some(isAlive)) return;
    }
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}

/** The guest sees a minimal environment, never the worker's (which holds credentials). */
function sandboxEnv(): NodeJS.ProcessEnv {
  const { PATH, HOME, LANG, TZ } = process.env;
  return { PATH: PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: HOME ?? '/tmp', LANG: LANG ?? 'C.UTF-8', TZ };
}
