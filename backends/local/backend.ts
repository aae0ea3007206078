// The `local` backend: a sandbox is a directory plus the guest runner in its own Linux namespaces
// (net, mount, pid, uts, ipc) on this host, joined to the agentlab bridge; or, with isolation `none`,
// a plain detached process (development machines without root). Its jail is jail.ts, its folder sandbox-dir.ts.
import { spawn } from 'node:child_process';
import { promises as fs, openSync, closeSync, constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import execa from 'execa';
import type { Owner, ResolvedProfile } from '../../common/contract';
import { agentsBinDir, SANDBOX_AGENTS_DIR } from '../../common/agent-tools';
import { agentRunnerPath } from '../../common/paths';
import { snapshotNameProblem } from '../../common/snapshot-names';
import { isAlive } from '../../common/process-alive';
import { WORKSPACE_MOUNT } from '../../common/workspace';
import {
  PermanentBackendError,
  type DestroyOutcome,
  type GuestBoot,
  type OwnedVm,
  type SandboxBackend,
  type VmRef,
} from '../contract';
import { ownership, requireOwner } from '../ownership';
import { vmFiles } from '../qemu/vm-dir';
import {
  createCgroup,
  jailCommand,
  killGroup,
  removeCgroup,
  SANDBOX_REPO_DIR,
  sandboxEnv,
  type JailOptions,
} from './jail';
import type { LocalNetwork } from './network';
import { copyRepository } from './repository';
import {
  exists,
  foundSandbox,
  journal,
  readBootRecord,
  readFaults,
  readOwner,
  sandboxDir,
  sandboxesRoot,
  sandboxVmids,
  type BootRecord,
  type OwnerRecord,
} from './sandbox-dir';
import { LocalWorkspaces, readAttachedWorkspace } from './workspaces';

export interface LocalBackendOptions extends JailOptions {
  vmidRange: { min: number; max: number };
  /** `namespaces` (default): the real sandbox. `none`: a plain process, for machines without root. */
  isolation?: 'namespaces' | 'none';
  network?: LocalNetwork;
  /** Emulated VM latencies (demos, tests of crash windows). */
  cloneDelayMs?: number;
  bootDelayMs?: number;
}

export class LocalBackend implements SandboxBackend {
  readonly kind = 'local' as const;
  private readonly root: string;
  private readonly isolated: boolean;
  readonly workspaces: LocalWorkspaces;

  constructor(private readonly options: LocalBackendOptions) {
    this.root = sandboxesRoot(options.dataDir);
    this.isolated = (options.isolation ?? 'namespaces') === 'namespaces';
    if (this.isolated && !options.network) throw new Error('the namespaces isolation needs a network');
    this.workspaces = new LocalWorkspaces({
      dataDir: options.dataDir,
      ownedSandboxDir: async (vm) => {
        if (!(await readOwner(this.dir(vm.vmid)))) return undefined;
        await this.requireOwned(vm);
        return this.dir(vm.vmid);
      },
      stop: (vm) => this.stop(vm),
      delay: async () => {
        const ms = (await readFaults(this.root)).workspaceDelayMs;
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

  async allocate(owner: Owner, attempt: number): Promise<number> {
    for (const vmid of await sandboxVmids(this.root)) {
      const record = await readOwner(this.dir(vmid));
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

  /** The one guard (ownership.ts) over the sandbox's owner.json. */
  private async requireOwned({ vmid, owner }: VmRef, options?: { absentIsFine?: boolean }): Promise<void> {
    requireOwner(`sandbox ${vmid}`, await foundSandbox(this.dir(vmid)), owner, options);
  }

  async clone(vm: VmRef, profile: ResolvedProfile): Promise<void> {
    await this.requireOwned(vm);
    const { vmid, owner } = vm;
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
    await journal(this.root, 'clone', vmid, owner.jobId);
  }

  async configure(vm: VmRef, _profile: ResolvedProfile, { bootstrap, localRepo }: GuestBoot): Promise<void> {
    await this.requireOwned(vm);
    const dir = this.dir(vm.vmid);
    if (localRepo) await copyRepository(localRepo, join(dir, 'repo.git'));
    const workspace = await readAttachedWorkspace(dir);
    const written = {
      ...bootstrap,
      // A git server on the sandbox's own loopback (development and tests): nothing of the host's.
      allowLoopbackHttp: true,
      ...(localRepo ? { localRepo: this.isolated ? SANDBOX_REPO_DIR : join(dir, 'repo.git') } : {}),
      // Where the guest finds its persistent workspace (unisolated, there is no /workspace: the host folder).
      ...(workspace ? { workspace: this.isolated ? WORKSPACE_MOUNT : workspace.path } : {}),
    };
    await fs.writeFile(join(dir, 'cloud-init', 'bootstrap.json'), JSON.stringify(written), { mode: 0o600 });
  }

  async start(vm: VmRef): Promise<void> {
    await this.requireOwned(vm);
    const { vmid } = vm;
    if (await readBootRecord(this.dir(vmid))) return; // already running
    const dir = this.dir(vmid);
    if (this.isolated) await this.options.network!.createSandbox(vmid);
    const cgroup = this.isolated ? await createCgroup(dir, vmid) : undefined;
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
    const broken = (await readFaults(this.root)).guestRunnerBroken;
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
    return jailCommand(dir, vmid, this.options, broken === true);
  }

  async guestAddress(vm: VmRef): Promise<string | undefined> {
    await this.requireOwned(vm);
    if ((await readFaults(this.root)).neverReady) return undefined;
    const boot = await readBootRecord(this.dir(vm.vmid));
    if (!boot) return undefined;
    if (Date.now() - boot.startedAt < (this.options.bootDelayMs ?? 0)) return undefined;
    return this.isolated ? this.options.network!.address(vm.vmid) : '127.0.0.1';
  }

  async stop(vm: VmRef): Promise<void> {
    await this.requireOwned(vm);
    await this.killProcesses(vm.vmid);
    await fs.rm(join(this.dir(vm.vmid), 'boot.json'), { force: true });
    await this.releaseHostResources(vm.vmid);
  }

  async deleteBootstrap(vm: VmRef): Promise<void> {
    await this.requireOwned(vm, { absentIsFine: true });
    await fs.rm(join(this.dir(vm.vmid), 'cloud-init', 'bootstrap.json'), { force: true });
  }

  async destroy({ vmid, owner }: VmRef): Promise<DestroyOutcome> {
    const found = await foundSandbox(this.dir(vmid));
    const state = ownership(found, owner);
    if (state !== 'ours') return state;
    if ((await readFaults(this.root)).failDestroy) throw new Error(`injected fault: destroy of sandbox ${vmid} failed`);
    await this.killProcesses(vmid);
    await this.releaseHostResources(vmid);
    await fs.rm(this.dir(vmid), { recursive: true, force: true });
    await journal(this.root, 'destroy', vmid, owner.jobId);
    return 'destroyed';
  }

  async listOwned(): Promise<OwnedVm[]> {
    const owned: OwnedVm[] = [];
    for (const vmid of await sandboxVmids(this.root)) {
      const record = await readOwner(this.dir(vmid));
      if (!record) continue;
      const running = !!(await readBootRecord(this.dir(vmid)));
      owned.push({ vmid, jobId: record.jobId, workflowId: record.workflowId, running });
    }
    return owned;
  }

  /**
   * A copy of what the sandbox writes (`work` and `state`; `cloud-init` is the backend's, read-only
   * inside) into `snapshots/<name>/`. Staged and renamed into place, so a crash never leaves half a
   * snapshot under the real name, and a snapshot already there is a retried call's.
   */
  async snapshot(vm: VmRef, name: string): Promise<void> {
    await this.requireOwned(vm);
    const { vmid } = vm;
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
  async rollback(vm: VmRef, name: string): Promise<void> {
    await this.requireOwned(vm);
    const { vmid } = vm;
    const source = this.snapshotDir(vmid, name);
    if (!(await exists(source))) throw new PermanentBackendError(`sandbox ${vmid} has no snapshot '${name}'`);
    await this.stop(vm);
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
    await removeCgroup(vmid);
  }

  /** Powers the sandbox off: the runner's process group and the agent's, which the runner detaches. */
  private async killProcesses(vmid: number): Promise<void> {
    const groups: number[] = [];
    const boot = await readBootRecord(this.dir(vmid));
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

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (await exists(join(dir, tool))) return true;
  }
  return false;
}
