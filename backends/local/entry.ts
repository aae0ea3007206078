// How a person enters an isolated local sandbox (`agentlab sandbox shell`): nsenter into the namespaces of
// the sandbox's init, then setpriv down to the agent user, as the runner does for the agent. It runs on the
// sandbox's host as root, and takes nothing of the caller's environment inside.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { SANDBOX_AGENT } from './host-view';
import { SANDBOX_WORK_DIR } from './jail';
import { sandboxDir } from './sandbox-dir';
import { PermanentBackendError } from '../contract';

/** Where the shell starts: the agent's checkout when the sandbox has one; else the sandbox's own /tmp. */
const SHELL_DIRS = [join(SANDBOX_WORK_DIR, 'repo'), '/tmp'];

export interface LocalEntry {
  argv: string[];
  env: NodeJS.ProcessEnv;
}

interface ProcStatus {
  pid: number;
  ppid: number;
  /** The pid in each pid namespace, outermost first. */
  nspids: number[];
}

async function readStatus(pid: number): Promise<ProcStatus | undefined> {
  const text = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { pid, ppid: Number(field('PPid')), nspids: field('NSpid').split(/\s+/).map(Number) };
}

/** The sandbox's pid 1 (bwrap's init): the first process under the boot shell in a pid namespace of its own. */
async function sandboxInit(bootPid: number): Promise<number | undefined> {
  const pids = (await fs.readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const statuses = (await Promise.all(pids.map(readStatus))).filter((s): s is ProcStatus => s !== undefined);
  const children = new Map<number, ProcStatus[]>();
  for (const status of statuses) children.set(status.ppid, [...(children.get(status.ppid) ?? []), status]);
  const queue = [...(children.get(bootPid) ?? [])];
  for (let next = queue.shift(); next; next = queue.shift()) {
    if (next.nspids.length > 1 && next.nspids.at(-1) === 1) return next.pid;
    queue.push(...(children.get(next.pid) ?? []));
  }
  return undefined;
}

/** The sandbox's own environment (PATH with the agents' and Node's directories), read from its init. */
async function sandboxEnvironment(pid: number): Promise<Record<string, string>> {
  const raw = await fs.readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  const env: Record<string, string> = {};
  for (const entry of raw.split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

/**
 * The command line that runs `command` (empty: an interactive shell) inside sandbox `vmid` as the agent
 * user: mount, net, pid, uts and ipc namespaces and the root of the sandbox, as its init has them.
 */
export async function localEntry(dataDir: string, vmid: number, command: string[], term?: string): Promise<LocalEntry> {
  const boot = await fs.readFile(join(sandboxDir(dataDir, vmid), 'boot.json'), 'utf8').catch(() => undefined);
  const bootPid = boot ? (JSON.parse(boot) as { pid: number }).pid : undefined;
  const init = bootPid === undefined ? undefined : await sandboxInit(bootPid);
  if (init === undefined) {
    throw new PermanentBackendError(`sandbox ${vmid} has no running process on this host (under ${dataDir})`);
  }
  const inside = await sandboxEnvironment(init);
  const { name, uid, gid } = SANDBOX_AGENT;
  const shell =
    command.length > 0 ? command : ['/bin/sh', '-c', 'command -v bash >/dev/null && exec bash -i; exec sh -i'];
  // The first of SHELL_DIRS the agent user may enter; HOME stays out of the checkout, so no dotfile lands in its patch.
  const chdir = `for d in ${SHELL_DIRS.map((d) => `'${d}'`).join(' ')}; do cd "$d" 2>/dev/null && break; done; exec "$@"`;
  return {
    argv: [
      'nsenter',
      ...['--target', String(init), '--mount', '--net', '--pid', '--uts', '--ipc', '--root'],
      '--',
      ...['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--no-new-privs', '--'],
      ...['/bin/sh', '-c', chdir, 'agentlab-shell', ...shell],
    ],
    env: {
      PATH: inside.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: inside.LANG ?? 'C.UTF-8',
      ...(inside.TZ ? { TZ: inside.TZ } : {}),
      HOME: '/tmp',
      USER: name,
      LOGNAME: name,
      ...(term ? { TERM: term } : {}),
    },
  };
}
