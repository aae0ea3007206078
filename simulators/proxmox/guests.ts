// Simulated guests: a started VM with a bootstrap snippet runs the REAL guest runner as a host process.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GuestRunnerOptions {
  /** dist/guest/agent-runner.js (common/paths.ts agentRunnerPath) */
  runnerPath: string;
  /** Each VM gets `<workRoot>/vm-<vmid>/` with its bootstrap file, state and work dirs. */
  workRoot: string;
  /**
   * Adds `allowLocalRepos: true` to the bootstrap the runner reads, so tests can clone a repository by
   * path. Off by default: a real guest cannot see the host's disk, and the backend never writes it.
   */
  allowLocalRepos?: boolean;
}

export class GuestRunners {
  /** vmid → pid of the process group that stands for the VM's userland. */
  private readonly groups = new Map<number, number>();

  constructor(private readonly options: GuestRunnerOptions) {}

  private dir(vmid: number): string {
    return join(this.options.workRoot, `vm-${vmid}`);
  }

  /** Boots the guest: after `bootMs` (cloud-init runs late in boot), the runner starts with the bootstrap. */
  launch(vmid: number, bootstrap: Record<string, unknown>, bootMs: number): void {
    this.kill(vmid);
    const dir = this.dir(vmid);
    for (const sub of ['state', 'work']) mkdirSync(join(dir, sub), { recursive: true });
    const file = this.bootstrapFile(vmid);
    const content = this.options.allowLocalRepos ? { ...bootstrap, allowLocalRepos: true } : bootstrap;
    writeFileSync(file, JSON.stringify(content), { mode: 0o600 });
    const runner = [this.options.runnerPath, '--bootstrap', file, '--state-dir', join(dir, 'state')];
    // One process group per VM (detached), so power-off reaches the runner and the shell that delays it.
    // The guest's console, kept after destroy (outside the VM's dir) for post-mortems.
    const console = openSync(join(this.options.workRoot, `console-${vmid}.log`), 'a');
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'sleep "$0"; exec "$@"',
        String(bootMs / 1000),
        process.execPath,
        ...runner,
        '--work-dir',
        join(dir, 'work'),
      ],
      { detached: true, stdio: ['ignore', console, console], cwd: dir, env: guestEnv() },
    );
    closeSync(console);
    child.unref();
    if (child.pid !== undefined) this.groups.set(vmid, child.pid);
  }

  /** Power-off: the runner's group and the agent's (the runner starts the agent in a group of its own). */
  kill(vmid: number): void {
    const pid = this.groups.get(vmid);
    if (pid === undefined) return;
    this.groups.delete(vmid);
    const agentPid = Number(readText(join(this.dir(vmid), 'state', 'agent.pid')).trim());
    for (const group of [pid, agentPid].filter((p) => p > 0)) killGroup(group);
  }

  /** Destroy: the VM's disk goes too. */
  remove(vmid: number): void {
    this.kill(vmid);
    rmSync(this.dir(vmid), { recursive: true, force: true });
  }

  killAll(): void {
    for (const vmid of [...this.groups.keys()]) this.kill(vmid);
  }

  running(): number[] {
    return [...this.groups.keys()];
  }

  /** The VM's process group id (its "power"), while it runs. */
  pid(vmid: number): number | undefined {
    return this.groups.get(vmid);
  }

  bootstrapFile(vmid: number): string {
    return join(this.dir(vmid), 'bootstrap.json');
  }
}

/** What a fresh guest's service would have: no host secrets, no test-runner variables. */
function guestEnv(): NodeJS.ProcessEnv {
  const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return { PATH, HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8' };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
