// What an isolated local sandbox sees of the host: an allowlist (system directories read-only, /etc
// without what only root may read), never the host minus a denylist. Everything else is the sandbox's own.
import { lstatSync, promises as fs, readdirSync, type Stats } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** Top-level system directories, bound read-only (or recreated as the links they are on merged-/usr hosts). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** Whole subtrees of /etc never shown, whatever their modes: agentlab's own config, a Proxmox cluster's. */
const HIDDEN_ETC = ['/etc/agentlab', '/etc/pve'];

export interface HostViewOptions {
  /** Further host directories the sandbox needs read-only (agentlab's own code, Node outside /usr). */
  readOnly: string[];
  /** Host paths hidden even inside what is bound (the operator's `local.maskPaths`, the data dir). */
  hidden: string[];
}

const isWithin = (path: string, root: string): boolean => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
};

const lstat = (path: string) => fs.lstat(path).catch(() => undefined);

/**
 * Entries of /etc that a user other than their owner could not read (shadow, private keys, SSH host
 * keys, database passwords…): the sandbox's processes run as uid 0 without capabilities, so modes alone
 * would not keep root-owned secrets from them. Walked afresh for every sandbox (a file made private a
 * moment ago must be hidden too), synchronously: ~1,200 entries here, 5–12 ms of CPU against 20–48 ms
 * through promises, which was the largest part of a sandbox start in the worker's profile.
 */
function privateEtcEntries(dir = '/etc'): { path: string; directory: boolean }[] {
  const found: { path: string; directory: boolean }[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of names) {
    const path = join(dir, name);
    const stat = lstatSyncOrUndefined(path);
    if (!stat || stat.isSymbolicLink() || HIDDEN_ETC.includes(path)) continue;
    const directory = stat.isDirectory();
    const othersMayRead = (stat.mode & 0o004) !== 0 && (!directory || (stat.mode & 0o001) !== 0);
    if (!othersMayRead) found.push({ path, directory });
    else if (directory) found.push(...privateEtcEntries(path));
  }
  return found;
}

function lstatSyncOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** bwrap arguments that build the sandbox's view of the host on bwrap's empty root. */
export async function hostViewArgs(options: HostViewOptions): Promise<string[]> {
  const args: string[] = [];
  const bound: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    const stat = await lstat(dir);
    if (!stat) continue;
    if (stat.isSymbolicLink()) {
      args.push('--symlink', await fs.readlink(dir), dir);
    } else if (stat.isDirectory()) {
      args.push('--ro-bind', dir, dir);
      bound.push(dir);
    }
  }
  args.push('--ro-bind', '/etc', '/etc');
  bound.push('/etc');
  for (const path of HIDDEN_ETC) if (await lstat(path)) args.push('--tmpfs', path);
  for (const { path, directory } of privateEtcEntries()) {
    args.push(...(directory ? ['--tmpfs', path] : ['--ro-bind', '/dev/null', path]));
  }
  // The sandbox's own scratch space; anything of the host under /tmp (a clone there) is bound after it.
  args.push('--perms', '1777', '--tmpfs', '/tmp', '--perms', '1777', '--tmpfs', '/var/tmp');
  args.push('--perms', '0755', '--tmpfs', '/run');
  for (const dir of options.readOnly) {
    if (bound.some((root) => isWithin(dir, root)) || !(await lstat(dir))) continue;
    // bwrap would create the path's parents 0700, out of the agent user's reach.
    args.push(...parentsOpenToAll(dir), '--ro-bind', dir, dir);
    bound.push(dir);
  }
  // A hidden path is masked only where the sandbox could otherwise see it; elsewhere it is simply absent.
  for (const path of options.hidden) {
    const stat = await lstat(path);
    if (!stat || !bound.some((root) => isWithin(path, root))) continue;
    args.push(...(stat.isDirectory() ? ['--tmpfs', path] : ['--ro-bind', '/dev/null', path]));
  }
  return args;
}

/** `--dir` for each parent of `path` (outermost first), readable and traversable by every user. */
export function parentsOpenToAll(path: string): string[] {
  const parents: string[] = [];
  for (let dir = dirname(path); dir !== '/' && dir !== '.'; dir = dirname(dir)) parents.unshift(dir);
  return parents.flatMap((dir) => ['--perms', '0755', '--dir', dir]);
}

/** The installation Node runs from, when it is not under a system directory (e.g. /opt/node/bin/node). */
export async function nodeInstallation(execPath: string): Promise<string> {
  return dirname(dirname(await fs.realpath(execPath)));
}

/** The unprivileged account agents run as inside a sandbox (the runner drops to it for the agent alone). */
export const SANDBOX_AGENT = { name: 'agent', uid: 64000, gid: 64000 } as const;

/**
 * The host's passwd and group with the agent's account added (and any host account of that name left
 * out), written into `dir` and bound over the sandbox's: tools such as ssh and git need the agent's
 * uid to have a name.
 */
export async function agentAccountArgs(dir: string): Promise<string[]> {
  const { name, uid, gid } = SANDBOX_AGENT;
  const withAgent = async (file: string, entry: string): Promise<string> => {
    const host = await fs.readFile(file, 'utf8').catch(() => '');
    const lines = host.split('\n').filter((line) => line !== '' && line.split(':')[0] !== name);
    const path = join(dir, file.split('/').pop()!);
    await fs.writeFile(path, [...lines, entry, ''].join('\n'), { mode: 0o644 });
    return path;
  };
  const passwd = await withAgent('/etc/passwd', `${name}:x:${uid}:${gid}:agentlab agent:/nonexistent:/bin/sh`);
  const group = await withAgent('/etc/group', `${name}:x:${gid}:`);
  return ['--ro-bind', passwd, '/etc/passwd', '--ro-bind', group, '/etc/group'];
}
