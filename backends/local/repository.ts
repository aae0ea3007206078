// A sandbox's own copy of a repository on this host: a bare repository holding the pinned commit and
// its history, and nothing else of the host (no other branch, no working tree, no config or hooks).
import { promises as fs } from 'node:fs';
import execa from 'execa';
import { PermanentBackendError } from '../contract';

/** The one branch of the copy; the guest runner checks the pinned commit out of it. */
const COPY_BRANCH_NAME = 'agentlab-base';
const COPY_BRANCH = `refs/heads/${COPY_BRANCH_NAME}`;

async function holdsCommit(copy: string, commit: string): Promise<boolean> {
  // No git process for the usual case, a first call: every fork of the worker costs it ~5 ms of CPU.
  if (!(await fs.stat(copy).catch(() => undefined))) return false;
  const result = await execa('git', ['-C', copy, 'rev-parse', '--verify', '--quiet', `${COPY_BRANCH}^{commit}`], {
    reject: false,
  });
  return result.exitCode === 0 && result.stdout.trim() === commit;
}

/**
 * Fetches `commit` of the repository at `path` into a new bare repository at `target`, staged and
 * renamed into place, so a retried call finds it whole or not at all. Runs with the worker's rights and
 * git's own checks: a repository another user owns is refused unless that user's path is in git's
 * `safe.directory`. A missing repository or commit is permanent: retrying cannot bring it back.
 */
export async function copyRepository(source: { path: string; commit: string }, target: string): Promise<void> {
  if (await holdsCommit(target, source.commit)) return;
  const staging = `${target}.partial`;
  await fs.rm(staging, { recursive: true, force: true });
  await fs.rm(target, { recursive: true, force: true });
  try {
    // HEAD names the copy's branch from the start (git init -b), rather than by a second git run.
    await execa('git', ['init', '--quiet', '--bare', '--template=', `--initial-branch=${COPY_BRANCH_NAME}`, staging]);
    await execa('git', [
      '-C',
      staging,
      'fetch',
      '--quiet',
      '--no-tags',
      '--no-write-fetch-head',
      '--',
      source.path,
      `${source.commit}:${COPY_BRANCH}`,
    ]);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true });
    const reason = String((err as execa.ExecaError).stderr || (err as Error).message).trim();
    throw new PermanentBackendError(
      `cannot copy commit ${source.commit.slice(0, 12)} of the repository ${source.path}: ${reason}`,
    );
  }
  await fs.rename(staging, target);
}
