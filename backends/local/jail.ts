// The jail of an isolated local sandbox: bwrap in the sandbox's network namespace, seeing an allowlist of the
// host read-only and its own folders; its cgroup limits; and the minimal environment every sandbox starts with.
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { SANDBOX_AGENTS_DIR } from '../../common/agent-tools';
import { agentRunnerPath, packageRoot } from '../../common/paths';
import { WORKSPACE_MOUNT } from '../../common/workspace';
import { agentAccountArgs, hostViewArgs, nodeInstallation, parentsOpenToAll, SANDBOX_AGENT } from './host-view';
import { sandboxNetns } from './network';
import { exists } from './sandbox-dir';
import { readAttachedWorkspace } from './workspaces';

/** Secrets and credentials live here inside a sandbox: a tmpfs no other sandbox and no disk sees. */
export const SANDBOX_SECRETS_DIR = '/run/agentlab/secrets';
// Everything the sandbox gets of its own lives under /run, a tmpfs bwrap creates: mount points can be
// made there whatever the host's (read-only) root looks like.
export const SANDBOX_WORK_DIR = '/run/sandbox/work';
const SANDBOX_STATE_DIR = '/run/sandbox/state';
const SANDBOX_CLOUD_INIT_DIR = '/run/cloud-init';
/** The sandbox's copy of a local repository (read-only): the only repository of the host it sees. */
export const SANDBOX_REPO_DIR = '/run/sandbox/repo.git';
const CGROUP_ROOT = '/sys/fs/cgroup';
const RUNNER_CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID'];

export const sandboxHostname = (vmid: number): string => `sandbox-${vmid}`;

export interface JailOptions {
  dataDir: string;
  /** Host paths hidden inside the sandbox even where it sees the host (system directories, /etc). */
  maskPaths?: string[];
  /** The sandbox resolves through this address (the gateway's DNS forwarder); absent: no DNS. */
  nameserver?: string;
  /** The agent CLIs: on the sandbox's PATH, read-only. */
  agentsDir?: string;
}

/** The isolated sandbox's init: the guest runner, restarted if it crashes (as systemd would), inside its jail. */
export async function jailCommand(
  dir: string,
  vmid: number,
  options: JailOptions,
  runnerBroken: boolean,
): Promise<string[]> {
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
  const init = runnerBroken
    ? ['sleep', '2147483647']
    : ['/bin/sh', '-c', 'until "$0" "$@"; do sleep 1; done; exec sleep 2147483647', process.execPath, ...runner];
  // The sandbox's own resolver and names. Without the gateway's forwarder it gets no nameserver at all
  // (a lookup fails at once on its own loopback) rather than the host's, which it cannot reach: every
  // lookup would wait out the resolver's timeouts. Its hostname resolves locally, so nothing (git's
  // ident, an agent) asks DNS for it.
  const resolvConf = join(dir, 'resolv.conf');
  await fs.writeFile(
    resolvConf,
    options.nameserver ? `nameserver ${options.nameserver}\n` : '# no DNS for sandboxes (local.dns.enabled: false)\n',
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
  const agentsDir = options.agentsDir;
  const agentsBind =
    agentsDir && (await exists(agentsDir))
      ? [...parentsOpenToAll(SANDBOX_AGENTS_DIR), '--ro-bind', agentsDir, SANDBOX_AGENTS_DIR]
      : [];
  const repoBind = (await exists(join(dir, 'repo.git'))) ? ['--ro-bind', join(dir, 'repo.git'), SANDBOX_REPO_DIR] : [];
  const workspace = await readAttachedWorkspace(dir);
  const workspaceBind = workspace ? ['--bind', workspace.path, WORKSPACE_MOUNT] : [];
  const agentAccount = await agentAccountArgs(dir);
  const hostView = await hostViewArgs({
    // The runner (and the package's agent wrappers) wherever the package lives; Node wherever it is installed.
    readOnly: [packageRoot(), await nodeInstallation(process.execPath)],
    hidden: ['/var/lib/agentlab', options.dataDir, ...(options.maskPaths ?? [])],
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
export async function createCgroup(dir: string, vmid: number): Promise<string | undefined> {
  const controllers = await fs.readFile(join(CGROUP_ROOT, 'cgroup.controllers'), 'utf8').catch(() => '');
  if (!/\bmemory\b/.test(controllers) || !/\bcpu\b/.test(controllers)) return undefined;
  const parent = join(CGROUP_ROOT, 'agentlab');
  await fs.mkdir(parent, { recursive: true });
  await fs.writeFile(join(parent, 'cgroup.subtree_control'), '+memory +cpu').catch(() => undefined);
  const group = join(parent, `sandbox-${vmid}`);
  await fs.mkdir(group, { recursive: true });
  const limits = JSON.parse(await fs.readFile(join(dir, 'limits.json'), 'utf8').catch(() => '{}')) as {
    cores?: number;
    memoryMb?: number;
  };
  if (limits.memoryMb) await fs.writeFile(join(group, 'memory.max'), String(limits.memoryMb * 1024 * 1024));
  if (limits.cores) await fs.writeFile(join(group, 'cpu.max'), `${limits.cores * 100_000} 100000`);
  return group;
}

export async function removeCgroup(vmid: number): Promise<void> {
  await fs.rmdir(join(CGROUP_ROOT, 'agentlab', `sandbox-${vmid}`)).catch(() => undefined);
}

/** Signals a process group (the sandbox, or an unisolated agent), else the process alone. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
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
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * The guest sees a minimal environment, never the worker's (which holds credentials). Its `node` is the
 * worker's own (the runner's), not whichever the system directories hold: agents started with
 * `#!/usr/bin/env node` run on the Node the worker was tested with.
 */
export function sandboxEnv(agentsBin?: string): NodeJS.ProcessEnv {
  const { HOME, LANG, TZ } = process.env;
  const nodeBin = dirname(process.execPath);
  const PATH = [agentsBin, SYSTEM_PATH.includes(nodeBin) ? undefined : nodeBin, ...SYSTEM_PATH]
    .filter(Boolean)
    .join(':');
  return { PATH, HOME: HOME ?? '/tmp', LANG: LANG ?? 'C.UTF-8', ...(TZ ? { TZ } : {}) };
}
