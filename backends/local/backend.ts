// The `local` backend: a sandbox is a directory plus the guest runner in its own Linux namespaces
// (net, mount, pid, uts, ipc) on this host, joined to the agentlab bridge; or, with isolation `none`,
// a plain detached process (development machines without root).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, openSync, closeSync, constants as fsConstants } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Owner, ResolvedProfile } from '../../common/contract';
import { agentsBinDir, SANDBOX_AGENTS_DIR } from '../../common/agent-tools';
import { agentRunnerPath, packageRoot } from '../../common/paths';
import execa from 'execa';
import { agentAccountArgs, hostViewArgs, nodeInstallation, parentsOpenToAll, SANDBOX_AGENT } from './host-view';
import { LocalNetwork, sandboxNetns } from './network';
import { copyRepository } from './repository';
import { vmFiles } from '../qemu/vm-dir';
import { PermanentBackendError, type DestroyOutcome, type GuestJob, type OwnedVm, type SandboxBackend } from '../contract';
import { snapshotNameProblem } from '../../common/snapshot-names';
import { WORKSPACE_MOUNT } from '../../common/workspace';
import { LocalWorkspaces, readAttachedWorkspace } from './workspaces';

export interface LocalBackendOptions {
  dataDir: string;
  vmidRange: { min: number; max: number };
  /** `namespaces` (default): the real sandbox. `none`: a plain process, for machines without root. */
  isolation?: 'namespaces' | 'none';
  network?: LocalNetwork;
  /** Host paths hidden inside the sandbox even where it sees the host (system directories, /etc). */
  maskPaths?: string[];
  /** Emulated VM latencies (demos, tests of crash windows). */
  cloneDelayMs?: number;
  bootDelayMs?: number;
  /** Isolated sandboxes resolve through this address (the gateway's DNS forwarder). */
  nameserver?: string;
  /** The agent CLIs (`agentlab agents install`): on every sandbox's PATH, read-only. */
  agentsDir?: string;
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
  /** Attaching or detaching a workspace takes this long (a window to crash the worker in). */
  workspaceDelayMs?: number;
}

/** Secrets and credentials live here inside a sandbox: a tmpfs no other sandbox and no disk sees. */
export const SANDBOX_SECRETS_DIR = '/run/agentlab/secrets';
// Everything the sandbox gets of its own lives under /run, a tmpfs bwrap creates: mount points can be
// made there whatever the host's (read-only) root looks like.
export const SANDBOX_WORK_DIR = '/run/sandbox/work';
const SANDBOX_STATE_DIR = '/run/sandbox/state';
const SANDBOX_CLOUD_INIT_DIR = '/run/cloud-init';
/** The sandbox's copy of a local repository (read-only): the only repository of the host it sees. */
const SANDBOX_REPO_DIR = '/run/sandbox/repo.git';
const CGROUP_ROOT = '/sys/fs/cgroup';
const RUNNER_CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID'];

export class LocalBackend implements SandboxBackend {
  readonly kind = 'local' as const;
  private readonly root: string;
  private readonly isolated: boolean;
  readonly workspaces: LocalWorkspaces;

  constructor(private readonly options: LocalBackendOptions) {
    this.root = join(options.dataDir, 'sandboxes');
    this.isolated = (options.isolation ?? 'namespaces') === 'namespaces';
    if (this.isolated && !options.network) throw new Error('the namespaces isolation needs a network');
    this.workspaces = new LocalWorkspaces({
      dataDir: options.dataDir,
      ownedSandboxDir: async (vmid, owner) => {
        if (!(await this.readOwner(vmid))) return undefined;
        await this.requireOwned(vmid, owner);
        return this.dir(vmid);
      },
      stop: (vmid) => this.stop(vmid),
      delay: async () => {
        const ms = (await this.faults()).workspaceDelayMs;
        if (ms) await sleep(ms);
      },
    });
  }

  /** Checks what isolation needs and sets up the bridge and ruleset; the worker calls it at start. */
  async prepareHost(): Promise<void> {
    if (this.isolated && process.getuid?.() !== 0) {
      throw new PermanentBackendError(
        `the local backend isolates sandboxes with namespaces, which needs root (running as uid ${process.getuid?.()}): ` +
          'run the worker as root, or set `local.isolation: none` for an unisolated development sandbox',
      );
    }
    await fs.mkdir(this.root, { recursive: true });
    if (!this.isolated) return;
    for (const tool of ['bwrap', 'ip', 'nft', 'bridge']) {
      if (!(await onPath(tool))) {
        const pkg = { bwrap: 'bubblewrap', ip: 'iproute2', nft: 'nftables', bridge: 'iproute2' }[tool];
        throw new PermanentBackendError(`${tool} is not installed: apt-get install ${pkg}`);
      }
    }
    await this.options.network!.ensureHost();
  }

  private dir(vmid: number): string {
    return sandboxDir(this.options.dataDir, vmid);
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
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOTEMPTY' || code === 'EEXIST') continue;
          throw err;
        }
        // A QEMU VM may hold this VMID (and so its address on the shared bridge): checked after our reservation,
        // as the qemu backend checks after its own, so of two racing backends at least one sees the other.
        if (!(await exists(vmFiles(this.options.dataDir, vmid).dir))) return vmid;
        await fs.rename(this.dir(vmid), staging);
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

  async clone(vmid: number, profile: ResolvedProfile, owner: Owner): Promise<void> {
    await this.requireOwned(vmid, owner);
    const marker = join(this.dir(vmid), 'cloned');
    if (await exists(marker)) return;
    if (this.options.cloneDelayMs) await sleep(this.options.cloneDelayMs);
    for (const sub of ['work', 'state', 'cloud-init']) {
      await fs.mkdir(join(this.dir(vmid), sub), { recursive: true, mode: 0o700 });
    }
    await fs.writeFile(
      join(this.dir(vmid), 'limits.json'),
      JSON.stringify({ cores: profile.cores, memoryMb: profile.memoryMb }),
    );
    await fs.writeFile(marker, new Date().toISOString());
    await this.journal('clone', vmid, owner.jobId);
  }

  async configure(vmid: number, _profile: ResolvedProfile, job: GuestJob): Promise<{ tokenHash: string }> {
    await this.requireOwned(vmid);
    if (job.localRepo) await copyRepository(job.localRepo, join(this.dir(vmid), 'repo.git'));
    const workspace = await readAttachedWorkspace(this.dir(vmid));
    const token = randomBytes(32).toString('hex');
    const bootstrap = {
      controllerUrl: job.controllerUrl,
      jobId: job.jobId,
      vmid,
      token,
      // A git server on the sandbox's own loopback (development and tests): nothing of the host's.
      allowLoopbackHttp: true,
      ...(job.localRepo ? { localRepo: this.isolated ? SANDBOX_REPO_DIR : join(this.dir(vmid), 'repo.git') } : {}),
      // Where the guest finds its persistent workspace (unisolated, there is no /workspace: the host folder).
      ...(workspace ? { workspace: this.isolated ? WORKSPACE_MOUNT : workspace.path } : {}),
    };
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
    if (this.isolated) await this.options.network!.createSandbox(vmid);
    const cgroup = this.isolated ? await this.createCgroup(vmid) : undefined;
    const console = openSync(
      join(dir, 'console.log'),
      fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT,
    );
    const bootDelaySeconds = (this.options.bootDelayMs ?? 0) / 1000;
    // One pid from "power on" to power off: the shell joins the cgroup, emulates the boot, then runs the sandbox
    // and stays its parent. Not `exec`: bwrap's --die-with-parent kills the sandbox when its parent dies, and
    // the parent must be this shell, which lives exactly as long as the sandbox, never the worker: a worker
    // crash would take every running sandbox with it (test/local-chaos.test.ts).
    const script = '[ -n "$1" ] && echo $$ > "$1/cgroup.procs"; sleep "$2"; shift 2; "$@"';
    const child = spawn(
      '/bin/sh',
      ['-c', script, 'sandbox-boot', cgroup ?? '', String(bootDelaySeconds), ...(await this.bootCommand(vmid))],
      {
        detached: true,
        stdio: ['ignore', console, console],
        cwd: dir,
        env: sandboxEnv(await this.agentsPath()),
      },
    );
    closeSync(console);
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start sandbox ${vmid}`);
    const record: BootRecord = { pid: child.pid, startedAt: Date.now() };
    await fs.writeFile(join(dir, 'boot.json'), JSON.stringify(record));
  }

  /** The agents' bin directory as the sandbox sees it, when the tools directory exists. */
  private async agentsPath(): Promise<string | undefined> {
    const dir = this.options.agentsDir;
    if (!dir || !(await exists(dir))) return undefined;
    return agentsBinDir(this.isolated ? SANDBOX_AGENTS_DIR : dir);
  }

  /** What runs as the sandbox's init: the guest runner, restarted if it crashes, as systemd would. */
  private async bootCommand(vmid: number): Promise<string[]> {
    const dir = this.dir(vmid);
    const broken = (await this.faults()).guestRunnerBroken;
    if (!this.isolated) {
      if (broken) return ['sleep', '2147483647'];
      const runner = [
        agentRunnerPath(),
        '--bootstrap',
        join(dir, 'cloud-init', 'bootstrap.json'),
        '--state-dir',
        join(dir, 'state'),
        '--work-dir',
        join(dir, 'work'),
      ];
      return [process.execPath, ...runner];
    }
    const runner = [
      agentRunnerPath(),
      '--bootstrap',
      join(SANDBOX_CLOUD_INIT_DIR, 'bootstrap.json'),
      '--state-dir',
      SANDBOX_STATE_DIR,
      '--work-dir',
      SANDBOX_WORK_DIR,
      '--secrets-dir',
      SANDBOX_SECRETS_DIR,
      '--agent-user',
      SANDBOX_AGENT.name,
    ];
    const init = broken
      ? ['sleep', '2147483647']
      : ['/bin/sh', '-c', 'until "$0" "$@"; do sleep 1; done; exec sleep 2147483647', process.execPath, ...runner];
    // The sandbox's own resolver and names. Without the gateway's forwarder it gets no nameserver at all
    // (a lookup fails at once on its own loopback) rather than the host's, which it cannot reach: every
    // lookup would wait out the resolver's timeouts. Its hostname resolves locally, so nothing (git's
    // ident, an agent) asks DNS for it.
    const resolvConf = join(dir, 'resolv.conf');
    await fs.writeFile(
      resolvConf,
      this.options.nameserver
        ? `nameserver ${this.options.nameserver}\n`
        : '# no DNS for sandboxes (local.dns.enabled: false)\n',
      { mode: 0o644 },
    );
    // /etc is the host's: its hostname file would name the host, not the sandbox.
    const hostnameFile = join(dir, 'hostname');
    await fs.writeFile(hostnameFile, `${sandboxHostname(vmid)}\n`, { mode: 0o644 });
    const hosts = join(dir, 'hosts');
    const hostHosts = await fs.readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1 localhost\n');
    await fs.writeFile(hosts, `${hostHosts.trimEnd()}\n127.0.1.1 ${sandboxHostname(vmid)}\n`, { mode: 0o644 });
    // Where the host's files really are: a symlink into /run would dangle on the sandbox's /run.
    const dnsBinds = [
      ...['--ro-bind', resolvConf, await fs.realpath('/etc/resolv.conf').catch(() => '/etc/resolv.conf')],
      ...['--ro-bind', hosts, await fs.realpath('/etc/hosts').catch(() => '/etc/hosts')],
      // Only over a file the host has: bwrap cannot create one in the read-only /etc.
      ...((await exists('/etc/hostname')) ? ['--ro-bind', hostnameFile, await fs.realpath('/etc/hostname')] : []),
    ];
    const agentsDir = this.options.agentsDir;
    const agentsBind =
      agentsDir && (await exists(agentsDir))
        ? [...parentsOpenToAll(SANDBOX_AGENTS_DIR), '--ro-bind', agentsDir, SANDBOX_AGENTS_DIR]
        : [];
    const repoBind = (await exists(join(dir, 'repo.git')))
      ? ['--ro-bind', join(dir, 'repo.git'), SANDBOX_REPO_DIR]
      : [];
    const workspace = await readAttachedWorkspace(dir);
    const workspaceBind = workspace ? ['--bind', workspace.path, WORKSPACE_MOUNT] : [];
    const agentAccount = await agentAccountArgs(dir);
    const hostView = await hostViewArgs({
      // The runner (and the package's agent wrappers) wherever the package lives; Node wherever it is installed.
      readOnly: [packageRoot(), await nodeInstallation(process.execPath)],
      hidden: ['/var/lib/agentlab', this.options.dataDir, ...(this.options.maskPaths ?? [])],
    });
    return [
      'ip',
      'netns',
      'exec',
      sandboxNetns(vmid),
      'bwrap',
      '--die-with-parent',
      '--new-session',
      '--unshare-pid',
      '--unshare-uts',
      '--unshare-ipc',
      '--unshare-cgroup-try',
      '--hostname',
      sandboxHostname(vmid),
      // The runner keeps what it needs to hand the agent its files and run it as the agent user, and to
      // stop it; the agent itself (setpriv to an unprivileged uid, no_new_privs) has no capability.
      '--cap-drop',
      'ALL',
      ...RUNNER_CAPABILITIES.flatMap((cap) => ['--cap-add', cap]),
      ...hostView,
      ...agentAccount,
      '--dev',
      '/dev',
      '--proc',
      '/proc',
      ...dnsBinds,
      ...parentsOpenToAll(SANDBOX_SECRETS_DIR),
      // The agent passes through to its own directory in it, and lists or reads nothing else there.
      '--perms',
      '0711',
      '--tmpfs',
      SANDBOX_SECRETS_DIR,
      ...parentsOpenToAll(SANDBOX_WORK_DIR),
      '--bind',
      join(dir, 'work'),
      SANDBOX_WORK_DIR,
      '--bind',
      join(dir, 'state'),
      SANDBOX_STATE_DIR,
      '--ro-bind',
      join(dir, 'cloud-init'),
      SANDBOX_CLOUD_INIT_DIR,
      ...repoBind,
      ...workspaceBind,
      ...agentsBind,
      // Nothing of the host is writable, and the root is not either: only the tmpfs and binds above.
      '--remount-ro',
      '/',
      '--setenv',
      'HOME',
      SANDBOX_WORK_DIR,
      '--chdir',
      SANDBOX_WORK_DIR,
      ...init,
    ];
  }

  /** cgroup v2 limits from the profile, where the host delegates the controllers; else none. */
  private async createCgroup(vmid: number): Promise<string | undefined> {
    const controllers = await fs.readFile(join(CGROUP_ROOT, 'cgroup.controllers'), 'utf8').catch(() => '');
    if (!/\bmemory\b/.test(controllers) || !/\bcpu\b/.test(controllers)) return undefined;
    const parent = join(CGROUP_ROOT, 'agentlab');
    await fs.mkdir(parent, { recursive: true });
    await fs.writeFile(join(parent, 'cgroup.subtree_control'), '+memory +cpu').catch(() => undefined);
    const group = join(parent, `sandbox-${vmid}`);
    await fs.mkdir(group, { recursive: true });
    const limits = JSON.parse(await fs.readFile(join(this.dir(vmid), 'limits.json'), 'utf8').catch(() => '{}')) as {
      cores?: number;
      memoryMb?: number;
    };
    if (limits.memoryMb) await fs.writeFile(join(group, 'memory.max'), String(limits.memoryMb * 1024 * 1024));
    if (limits.cores) await fs.writeFile(join(group, 'cpu.max'), `${limits.cores * 100_000} 100000`);
    return group;
  }

  private async removeCgroup(vmid: number): Promise<void> {
    await fs.rmdir(join(CGROUP_ROOT, 'agentlab', `sandbox-${vmid}`)).catch(() => undefined);
  }

  async guestAddress(vmid: number): Promise<string | undefined> {
    await this.requireOwned(vmid);
    if ((await this.faults()).neverReady) return undefined;
    const boot = await this.bootRecord(vmid);
    if (!boot) return undefined;
    if (Date.now() - boot.startedAt < (this.options.bootDelayMs ?? 0)) return undefined;
    return this.isolated ? this.options.network!.address(vmid) : '127.0.0.1';
  }

  async stop(vmid: number): Promise<void> {
    await this.requireOwned(vmid);
    await this.killProcesses(vmid);
    await fs.rm(join(this.dir(vmid), 'boot.json'), { force: true });
    await this.releaseHostResources(vmid);
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
    await this.releaseHostResources(vmid);
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

  /**
   * A copy of what the sandbox writes (`work` and `state`; `cloud-init` is the backend's, read-only
   * inside) into `snapshots/<name>/`. Staged and renamed into place, so a crash never leaves half a
   * snapshot under the real name, and a snapshot already there is a retried call's.
   */
  async snapshot(vmid: number, name: string, owner: Owner): Promise<void> {
    await this.requireOwned(vmid, owner);
    const target = this.snapshotDir(vmid, name);
    if (await exists(target)) return;
    await fs.mkdir(join(this.dir(vmid), 'snapshots'), { recursive: true, mode: 0o700 });
    const staging = await fs.mkdtemp(join(this.dir(vmid), 'snapshots', `.${name}-`));
    try {
      await copyInto(
        SNAPSHOT_DIRS.map((sub) => join(this.dir(vmid), sub)),
        staging,
      );
      await fs.rename(staging, target);
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  /** Stops the sandbox (a disk is not rolled back under a running guest), then restores the copy. */
  async rollback(vmid: number, name: string, owner: Owner): Promise<void> {
    await this.requireOwned(vmid, owner);
    const source = this.snapshotDir(vmid, name);
    if (!(await exists(source))) throw new PermanentBackendError(`sandbox ${vmid} has no snapshot '${name}'`);
    await this.stop(vmid);
    for (const sub of SNAPSHOT_DIRS) {
      // Copy first, swap second: a crash in between leaves the snapshot intact, and a retry redoes it.
      const restored = join(this.dir(vmid), `.restore-${sub}`);
      await fs.rm(restored, { recursive: true, force: true });
      await copyTree(join(source, sub), restored);
      await fs.rm(join(this.dir(vmid), sub), { recursive: true, force: true });
      await fs.rename(restored, join(this.dir(vmid), sub));
    }
  }

  private snapshotDir(vmid: number, name: string): string {
    // The name becomes a path: only PVE's snapshot-name syntax, so it can never leave the sandbox's folder.
    const problem = snapshotNameProblem(name);
    if (problem) throw new PermanentBackendError(problem);
    return join(this.dir(vmid), 'snapshots', name);
  }

  private async releaseHostResources(vmid: number): Promise<void> {
    if (!this.isolated) return;
    await this.options.network!.destroySandbox(vmid);
    await this.removeCgroup(vmid);
  }

  /** Powers the sandbox off: the runner's process group and the agent's, which the runner detaches. */
  private async killProcesses(vmid: number): Promise<void> {
    const groups: number[] = [];
    const boot = await this.bootRecord(vmid);
    if (boot) groups.push(boot.pid);
    if (!this.isolated) {
      // Unisolated, the agent runs in a process group of its own. (Isolated, agent.pid is a pid inside
      // the sandbox's pid namespace: it must never be signalled from the host.)
      const agentPid = Number(
        (await fs.readFile(join(this.dir(vmid), 'state', 'agent.pid'), 'utf8').catch(() => '')).trim(),
      );
      if (agentPid > 0) groups.push(agentPid);
    }
    const remaining = async (): Promise<number[]> => [...groups.filter(isAlive), ...(await this.netnsPids(vmid))];
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      for (const pid of groups) killGroup(pid, signal);
      for (const pid of await this.netnsPids(vmid)) killGroup(pid, signal);
      const deadline = Date.now() + 2000;
      while ((await remaining()).length > 0 && Date.now() < deadline) await sleep(50);
      if ((await remaining()).length === 0) return;
    }
  }

  /** Host pids of every process inside the sandbox's network namespace. */
  private async netnsPids(vmid: number): Promise<number[]> {
    return this.isolated ? this.options.network!.sandboxPids(vmid) : [];
  }
}

const sandboxHostname = (vmid: number) => `sandbox-${vmid}`;

/** A sandbox's folder on its host: its owner mark, boot record and writable directories. */
export const sandboxDir = (dataDir: string, vmid: number): string => join(dataDir, 'sandboxes', String(vmid));

/** The per-sandbox directories a snapshot keeps: the ones the guest writes. */
const SNAPSHOT_DIRS = ['work', 'state'] as const;

/**
 * `cp -a`: keeps owners, modes, links and special files (fs.cp refuses sockets and FIFOs a guest may
 * leave), and shares blocks with the original where the filesystem can (reflink).
 */
async function copyTree(from: string, to: string): Promise<void> {
  await execa('cp', ['-a', '--reflink=auto', '--', from, to]);
}

/** copyTree of several trees into one folder, by one `cp` (each fork of the worker costs it ~5 ms of CPU). */
async function copyInto(from: string[], folder: string): Promise<void> {
  await execa('cp', ['-a', '--reflink=auto', '--target-directory', folder, '--', ...from]);
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

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (await exists(join(dir, tool))) return true;
  }
  return false;
}

async function exists(path: string): Promise<boolean> {
  return fs.access(path).then(
    () => true,
    () => false,
  );
}

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * The guest sees a minimal environment, never the worker's (which holds credentials). Its `node` is the
 * worker's own (the runner's), not whichever the system directories hold: agents started with
 * `#!/usr/bin/env node` run on the Node the worker was tested with.
 */
function sandboxEnv(agentsBin?: string): NodeJS.ProcessEnv {
  const { HOME, LANG, TZ } = process.env;
  const nodeBin = dirname(process.execPath);
  const PATH = [agentsBin, SYSTEM_PATH.includes(nodeBin) ? undefined : nodeBin, ...SYSTEM_PATH]
    .filter(Boolean)
    .join(':');
  return { PATH, HOME: HOME ?? '/tmp', LANG: LANG ?? 'C.UTF-8', ...(TZ ? { TZ } : {}) };
}
