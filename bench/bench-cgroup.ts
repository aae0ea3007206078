// CPU accounting for a benchmark: a cgroup of its own (v2, or v1's cpuacct) that a process joins before it
// starts, so the CPU of everything it ever starts counts — sandbox processes killed unreaped included.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

export class CpuGroup {
  private readonly dir: string;
  private readonly v2: boolean;

  constructor(name: string) {
    const root = ['/sys/fs/cgroup'].find(
      (dir) => existsSync(join(dir, 'cgroup.controllers')) || existsSync(join(dir, 'cpuacct')),
    );
    if (!root) throw new Error('no cgroup filesystem to account CPU with (neither cgroup v2 nor v1 cpuacct)');
    this.v2 = existsSync(join(root, 'cgroup.controllers'));
    this.dir = this.v2 ? join(root, name) : join(root, 'cpuacct', name);
    mkdirSync(this.dir);
  }

  /** Starts `command` inside the group: a shell joins it, then becomes the command (one pid throughout). */
  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess {
    const join = 'echo $$ > "$1"; shift; exec "$@"';
    return spawn('/bin/sh', ['-c', join, 'cpu-group', `${this.dir}/cgroup.procs`, command, ...args], options);
  }

  /** CPU seconds used by every process that ever ran in the group. */
  seconds(): number {
    if (this.v2) {
      const usec = /usage_usec (\d+)/.exec(readFileSync(join(this.dir, 'cpu.stat'), 'utf8'))?.[1];
      return Number(usec ?? 0) / 1e6;
    }
    return Number(readFileSync(join(this.dir, 'cpuacct.usage'), 'utf8')) / 1e9;
  }

  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      /* still has processes (a leak the bench reports otherwise), or already gone */
    }
  }
}
