// `--repo` given as a path on this machine: find the repository, pin `--ref` to a commit, and say what
// the job will not see. Runs as the CLI's user, so a repository is usable exactly when that user can read it.
import { constants as fsConstants, promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import execa from 'execa';
import { usageError } from './errors';

export interface LocalRepository {
  /** The repository's top level (its git dir when bare), absolute, links resolved. */
  path: string;
  /** The ref as the user gave it (default HEAD), and the commit it named when read. */
  ref: string;
  commit: string;
  /** Files with changes the job will not see (uncommitted or untracked); 0 for a bare repository. */
  uncommittedFiles: number;
}

/** A path rather than a URL: no `scheme://`, and no `host:` before the first `/` (git's scp-like form). */
export function isLocalPathInput(repo: string): boolean {
  if (/^file:\/\//i.test(repo)) return true;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo)) return false;
  return !/^[^/]*:/.test(repo);
}

function expandPath(input: string, cwd: string): string {
  if (/^file:\/\//i.test(input)) {
    try {
      return fileURLToPath(input);
    } catch (err) {
      throw usageError(`--repo: ${JSON.stringify(input)} is not a valid file:// URL (${(err as Error).message})`);
    }
  }
  if (input === '~' || input.startsWith('~/')) return homedir() + input.slice(1);
  if (input.startsWith('~')) throw usageError(`--repo: ${JSON.stringify(input)}: only ~ and ~/ are expanded`);
  return isAbsolute(input) ? input : resolve(cwd, input);
}

/** git's own message, first line, without the "fatal: " prefix. */
export function gitReason(err: unknown): string {
  const stderr = (err as execa.ExecaError).stderr ?? (err as Error).message;
  return (
    String(stderr)
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.replace(/^fatal: /, '') ?? 'git failed'
  );
}

// No optional locks: reading must not even refresh the user's index.
const git = (dir: string, args: string[]) =>
  execa('git', ['--no-optional-locks', '-C', dir, ...args], { stripFinalNewline: true });

/** The repository `input` names: its top level (its git dir when bare), absolute, links resolved. */
export async function locateLocalRepository(
  input: string,
  cwd = process.cwd(),
): Promise<{ path: string; bare: boolean }> {
  const given = expandPath(input, cwd);
  let real: string;
  try {
    real = await fs.realpath(given);
    await fs.access(real, fsConstants.R_OK | fsConstants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by you' : code;
    throw usageError(`--repo: ${given} ${why}`);
  }
  if (!(await fs.stat(real)).isDirectory()) throw usageError(`--repo: ${real} is not a directory`);
  let bare: boolean;
  try {
    bare = (await git(real, ['rev-parse', '--is-bare-repository'])).stdout === 'true';
  } catch (err) {
    throw usageError(`--repo: ${real} is not a git repository (${gitReason(err)})`);
  }
  const path = (await git(real, ['rev-parse', bare ? '--absolute-git-dir' : '--show-toplevel'])).stdout;
  return { path, bare };
}

export async function readLocalRepository(input: string, ref = 'HEAD', cwd = process.cwd()): Promise<LocalRepository> {
  const { path, bare } = await locateLocalRepository(input, cwd);
  let commit: string;
  try {
    commit = (await git(path, ['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])).stdout;
  } catch {
    const hasCommits = await git(path, ['rev-parse', '--verify', '--quiet', 'HEAD']).then(
      () => true,
      () => false,
    );
    throw usageError(
      hasCommits
        ? `--ref: ${JSON.stringify(ref)} names no commit in ${path}`
        : `--repo: ${path} has no commits yet: the job gets the committed state, so commit first`,
    );
  }
  let uncommittedFiles = 0;
  if (!bare) {
    const status = await git(path, ['status', '--porcelain=v1', '-z', '--untracked-files=normal']);
    uncommittedFiles = status.stdout.split('\0').filter((entry) => /^[ MADRCU?!]{2} /.test(entry)).length;
  }
  return { path, ref, commit, uncommittedFiles };
}
