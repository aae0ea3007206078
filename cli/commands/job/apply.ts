// `agentlab job apply`: a job's changes.patch as a commit on a new branch of a local repository, built with git
// plumbing on a temporary index so the user's working tree, index, HEAD and uncommitted files are never touched.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import execa from 'execa';
import type { JobDescription } from '../../../common/contract';
import type { JobFilesReader } from '../../../common/job-files';
import { JOB_ARTIFACTS } from '../../../common/job-folder';
import type { CliContext } from '../../context';
import { CliError, ExitCode, rejected, usageError } from '../../errors';
import { jobFilesFor } from '../../job-files-reader';
import { gitReason, isLocalPathInput, locateLocalRepository } from '../../local-repo';
import { printJson, progress } from '../../output';
import { runAction } from '../../run-action';

export interface ApplyOptions {
  ref: string;
  repo?: string;
  branch?: string;
  onto?: string;
}

/** The `--json` document (cli/json-schemas.ts `jobApplySchema`). */
export interface AppliedJob {
  jobId: string;
  repo: string;
  branch: string;
  commit: string;
  baseCommit: string;
  filesChanged: number;
}

/** The part of report.json apply reads; the runner writes it (guest/delivery.ts `deliver`). */
interface JobReport {
  baseCommit?: unknown;
  patchRedactions?: unknown;
  patchFilesWithheld?: unknown;
}

const SUBJECT_LENGTH = 72;

// No optional locks: even a read must not refresh the user's index behind their back.
const git = (repo: string, args: string[], options: execa.Options = {}) =>
  execa('git', ['--no-optional-locks', '-C', repo, ...args], { stripFinalNewline: true, ...options });

/** The commit `rev` names in `repo`, if it names one there. */
async function commitIn(repo: string, rev: string): Promise<string | undefined> {
  const found = await git(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`], {
    reject: false,
  });
  return found.exitCode === 0 ? String(found.stdout) : undefined;
}

/**
 * What `git switch -c` would accept. `--branch` mode also expands `@{-1}` into another name: anything that
 * does not come back unchanged is not the branch the user asked for.
 */
async function checkBranchName(branch: string): Promise<void> {
  const checked = await execa('git', ['check-ref-format', '--branch', branch], { reject: false });
  if (checked.exitCode !== 0 || checked.stdout !== branch)
    throw usageError(`--branch: ${JSON.stringify(branch)} is not a valid branch name (git check-ref-format --branch)`);
}

/** `--repo`, else the job's own repository when it is on this machine; a URL has no working copy to apply to. */
async function targetRepository(jobId: string, d: JobDescription, given?: string) {
  if (given !== undefined) return locateLocalRepository(given);
  if (d.repo === undefined) throw usageError(`--repo is required: job ${jobId} has no repository`);
  if (!isLocalPathInput(d.repo))
    throw usageError(`--repo is required: job ${jobId}'s repository is a URL (${d.repo}); give your clone of it`);
  try {
    return await locateLocalRepository(d.repo);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    throw usageError(`job ${jobId}'s repository: ${err.message.replace(/^--repo: /, '')}; give another with --repo`);
  }
}

/** A missing patch is the job's state, not a missing job: say where the job is instead of "not found". */
async function readPatch(files: JobFilesReader, jobId: string, d: JobDescription): Promise<Buffer> {
  try {
    return await files.readArtifact(jobId, JOB_ARTIFACTS.patch);
  } catch (err) {
    if (!(err instanceof CliError && err.exitCode === ExitCode.notFound)) throw err;
    if (d.jobStatus === 'QUEUED' || d.jobStatus === 'RUNNING')
      throw rejected(`job ${jobId} has no changes.patch yet: it is ${d.jobStatus}`);
    throw rejected(`job ${jobId} has no changes.patch: it ended ${d.jobStatus}${d.message ? ` (${d.message})` : ''}`);
  }
}

/** report.json, or nothing: without it the description's pinned commit (local jobs) still names the base. */
async function readReport(files: JobFilesReader, jobId: string): Promise<JobReport> {
  try {
    const report = JSON.parse((await files.readArtifact(jobId, JOB_ARTIFACTS.report)).toString('utf8')) as unknown;
    return typeof report === 'object' && report !== null ? (report as JobReport) : {};
  } catch (err) {
    if (err instanceof CliError && err.exitCode !== ExitCode.notFound) throw err;
    return {};
  }
}

async function chooseBase(repo: string, jobId: string, recorded: string | undefined, onto?: string) {
  if (onto !== undefined) {
    const base = await commitIn(repo, onto);
    if (!base) throw usageError(`--onto: ${JSON.stringify(onto)} names no commit in ${repo}`);
    return base;
  }
  if (!recorded)
    throw rejected(`job ${jobId} does not record the commit it started from: choose a base with --onto <rev>`);
  const base = await commitIn(repo, recorded);
  if (!base) {
    throw rejected(
      `job ${jobId} started from commit ${recorded.slice(0, 12)}, which ${repo} does not have: ` +
        `fetch it, or choose a base with --onto <rev>`,
    );
  }
  return base;
}

/** The user's identity when git has one; a commit needs one, so agentlab's own otherwise. */
async function identityEnv(repo: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {};
  for (const role of ['AUTHOR', 'COMMITTER']) {
    if ((await git(repo, ['var', `GIT_${role}_IDENT`], { reject: false })).exitCode === 0) continue;
    env[`GIT_${role}_NAME`] = 'agentlab';
    env[`GIT_${role}_EMAIL`] = 'agentlab@localhost';
  }
  return env;
}

function commitMessage(jobId: string, base: string, task?: string): string {
  const firstLine = task
    ?.split('\n')
    .find((line) => line.trim() !== '')
    ?.trim();
  let subject = `agentlab job ${jobId}${firstLine ? `: ${firstLine}` : ''}`;
  if (subject.length > SUBJECT_LENGTH) subject = subject.slice(0, SUBJECT_LENGTH - 1) + '…';
  const body = [`The changes.patch of agentlab job ${jobId}, applied on ${base}.`];
  if (task) body.push('', `Task: ${task.trim()}`);
  return `${subject}\n\n${body.join('\n')}\n`;
}

/**
 * The patch applied to `base`'s tree in an index of our own, committed with `base` as parent; objects only, no
 * ref. A patch that does not apply leaves nothing but unreachable objects, which git's gc collects.
 */
async function commitPatch(repo: string, jobId: string, base: string, patch: Buffer, message: string) {
  const scratch = await mkdtemp(join(tmpdir(), 'agentlab-apply-'));
  try {
    const env = { GIT_INDEX_FILE: join(scratch, 'index') };
    await git(repo, ['read-tree', base], { env });
    // Whitespace as the agent left it: the branch is its change, to review, not to reformat.
    const applied = await git(repo, ['apply', '--cached', '--whitespace=nowarn', '--apply', '--numstat', '-'], {
      env,
      input: patch,
      reject: false,
    });
    if (applied.exitCode !== 0)
      throw rejected(`job ${jobId}'s patch does not apply on ${base.slice(0, 12)}:\n${applied.stderr}`);
    const tree = (await git(repo, ['write-tree'], { env })).stdout;
    const commit = (
      await git(repo, ['commit-tree', '-p', base, '-F', '-', tree], {
        env: await identityEnv(repo),
        input: message,
      })
    ).stdout;
    return { commit, filesChanged: applied.stdout.split('\n').filter((line) => line !== '').length };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The memo's task summary; a memo sealed with a key this CLI lacks must not stop the apply (cf. cli/job-listing.ts). */
async function taskSummary(ctx: CliContext, jobId: string): Promise<string | undefined> {
  try {
    const memo = (await (await ctx.jobs.handle(jobId)).describe()).memo;
    return typeof memo?.task === 'string' ? memo.task : undefined;
  } catch {
    return undefined;
  }
}

/** What the user should know before trusting the branch: the patch may be partial. */
function warnings(jobId: string, d: JobDescription, report: JobReport): string[] {
  const notes: string[] = [];
  if (d.jobStatus !== 'COMPLETED')
    notes.push(`note: job ${jobId} is ${d.jobStatus}: its patch is what the agent had changed when it stopped`);
  const redactions = typeof report.patchRedactions === 'number' ? report.patchRedactions : 0;
  const withheld = Array.isArray(report.patchFilesWithheld) ? report.patchFilesWithheld.length : 0;
  if (redactions > 0 || withheld > 0) {
    notes.push(
      `note: job ${jobId}'s patch had ${redactions} secret(s) redacted and ${withheld} file(s) withheld ` +
        `(see its report.json): the branch is not all the agent wrote`,
    );
  }
  return notes;
}

const shellWord = (word: string) => (/^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

export async function run(opts: ApplyOptions, ctx: CliContext): Promise<number> {
  if (opts.branch !== undefined) await checkBranchName(opts.branch);
  const jobId = await ctx.jobs.resolve(opts.ref);
  const d = await ctx.jobs.describe(jobId);
  if (!d.hasJob) throw rejected(`${jobId} is a sandbox without a job: it has no changes to apply`);
  const branch = opts.branch ?? `agentlab/${jobId}`;
  const { path: repo, bare } = await targetRepository(jobId, d, opts.repo);

  const files = jobFilesFor(ctx);
  const patch = await readPatch(files, jobId, d);
  if (patch.toString('utf8').trim() === '') throw rejected(`job ${jobId} changed nothing: its patch is empty`);
  const report = await readReport(files, jobId);
  const recorded = typeof report.baseCommit === 'string' ? report.baseCommit : d.commit;
  const base = await chooseBase(repo, jobId, recorded, opts.onto);

  const message = commitMessage(jobId, base, await taskSummary(ctx, jobId));
  const { commit, filesChanged } = await commitPatch(repo, jobId, base, patch, message);
  // The empty old value: create, never move. Atomic, so a branch made meanwhile is refused, not overwritten.
  const created = await git(
    repo,
    ['update-ref', '-m', `agentlab job apply ${jobId}`, `refs/heads/${branch}`, commit, ''],
    { reject: false },
  );
  if (created.exitCode !== 0) {
    const exists = await git(repo, ['show-ref', '--verify', '--quiet', `refs/heads/${branch}`], {
      reject: false,
    });
    throw rejected(
      exists.exitCode === 0
        ? `branch ${branch} already exists in ${repo}: choose another with --branch`
        : `cannot create branch ${branch} in ${repo}: ${gitReason(created)}`,
    );
  }

  for (const note of warnings(jobId, d, report)) progress(ctx.io, note);
  const applied: AppliedJob = { jobId, repo, branch, commit, baseCommit: base, filesChanged };
  if (ctx.json) printJson(ctx.io, applied);
  else {
    const short = (await git(repo, ['rev-parse', '--short', commit])).stdout;
    const checkout = bare ? '' : `; check it out with: git -C ${shellWord(repo)} switch ${shellWord(branch)}`;
    ctx.io.out(`applied job ${jobId} as branch ${branch} (commit ${short}) on ${repo}${checkout}\n`);
  }
  return ExitCode.ok;
}

export function register(job: Command): void {
  job
    .command('apply <job>')
    .description("commit a job's changes.patch on a new branch of a local repository; the working tree is untouched")
    .option('--repo <path>', "the repository to apply to (default: the job's, when it is on this machine)")
    .option('--branch <name>', 'the branch to create (default agentlab/<job>)')
    .option('--onto <rev>', "the commit to apply on (default: the job's base commit)")
    .option('--json', 'print one JSON document')
    .action(runAction((ctx, options: Omit<ApplyOptions, 'ref'>, ref: string) => run({ ...options, ref }, ctx)));
}
