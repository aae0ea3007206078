// The job's repository: cloned (or refreshed in a persistent workspace) before the agent, read after it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from './files';
import { git } from './git';
import { isCommitId, isLocalRepo, refProblem, repoUrlProblem } from './git-input';
import { appendRunnerLine, log } from './log';
import { patchRedactionSummary, redactPatch } from './redaction';
import { chownTree, type AgentUser } from './secrets';
import type { Changes, ClaimRecord, GuestJob } from './state';

export class Checkout {
  /** The agent's working directory: `<work dir>/repo`, or the workspace's `repo`. */
  repoDir: string;
  workspaceDir: string | undefined;

  constructor(
    private readonly workDir: string,
    private readonly agentUser: AgentUser | undefined,
  ) {
    this.repoDir = path.join(workDir, 'repo');
  }

  /**
   * A persistent workspace (mounted at /workspace) holds the checkout, so the next job finds it again: the
   * agent's directory is then the workspace's `repo`, and the workspace itself the agent's to write.
   */
  useWorkspace(workspace: string | null): void {
    if (!workspace) return;
    this.workspaceDir = workspace;
    this.repoDir = path.join(workspace, 'repo');
    if (this.agentUser) fs.chownSync(workspace, this.agentUser.uid, this.agentUser.gid);
  }

  /**
   * Where to clone from and what to check out. A repository on the host arrives as the host's copy of
   * its pinned commit (bootstrap `localRepo`); anything else is cloned from its URL, by the same rules
   * the CLI and the workflow applied.
   */
  private source(job: GuestJob, claim: ClaimRecord): { url: string; ref: string } {
    if (isLocalRepo(job.repo) && claim.localRepo) {
      if (!isCommitId(job.commit)) throw new Error('the job names a local repository but no commit');
      return { url: claim.localRepo, ref: job.commit };
    }
    const ref = job.ref || 'HEAD';
    const problem = repoUrlProblem(job.repo, {
      allowLocal: claim.allowLocalRepos,
      allowLoopbackHttp: claim.allowLocalRepos || claim.allowLoopbackHttp,
    });
    if (problem) throw new Error(`repository ${problem}`);
    const refIssue = refProblem(ref);
    if (refIssue) throw new Error(`ref ${refIssue}`);
    return { url: job.repo, ref };
  }

  /**
   * A checkout the workspace already holds is fetched into, not cloned again: tracked files go to the ref
   * (the earlier job's changes are in its patch), untracked ones are removed, ignored ones (build output,
   * dependencies) stay. The earlier agent's config was reduced to the bare minimum: the URL is given here.
   */
  private async refresh(source: { url: string; ref: string }): Promise<void> {
    this.sanitizeConfig(); // an agent killed with its sandbox left its config as it pleased
    await git(['fetch', '--quiet', '--', source.url, source.ref], { cwd: this.repoDir });
    await git(['checkout', '--quiet', '--force', '-B', 'agentlab', 'FETCH_HEAD'], { cwd: this.repoDir });
    await git(['clean', '--quiet', '-d', '--force'], { cwd: this.repoDir });
  }

  /** Clones (or refreshes) the job's ref; returns the commit the agent starts from. */
  async prepare(job: GuestJob, claim: ClaimRecord): Promise<string> {
    const source = this.source(job, claim);
    if (this.workspaceDir && fs.existsSync(path.join(this.repoDir, '.git'))) {
      await this.refresh(source);
      if (this.agentUser) chownTree(this.repoDir, this.agentUser);
      return (await git(['rev-parse', 'HEAD'], { cwd: this.repoDir })).trim();
    }
    fs.rmSync(this.repoDir, { recursive: true, force: true }); // a half-done clone from an earlier attempt
    fs.mkdirSync(this.workDir, { recursive: true });
    await git(['clone', '--no-checkout', '--quiet', '--', source.url, this.repoDir], {
      cwd: path.dirname(this.repoDir),
    });
    await git(['fetch', '--quiet', '--', 'origin', source.ref], { cwd: this.repoDir });
    await git(['checkout', '--quiet', '-B', 'agentlab', 'FETCH_HEAD'], { cwd: this.repoDir });
    if (this.agentUser) {
      fs.chmodSync(this.workDir, 0o711); // the agent passes through to its checkout
      chownTree(this.repoDir, this.agentUser); // the agent's to change
    }
    return (await git(['rev-parse', 'HEAD'], { cwd: this.repoDir })).trim();
  }

  /**
   * After the agent, the repository's .git is the agent's work: its config could name a clean
   * filter, an external diff, a pager or an fsmonitor that git would run for us. Keep only what
   * git needs to read the repository; hooks are off for every call anyway.
   */
  sanitizeConfig(): void {
    const configFile = path.join(this.repoDir, '.git', 'config');
    let original = '';
    try {
      original = fs.readFileSync(configFile, 'utf8');
    } catch {
      /* no config: git will say what is wrong */
    }
    const version = /repositoryformatversion\s*=\s*(\d+)/.exec(original);
    const objectFormat = /objectformat\s*=\s*(\w+)/i.exec(original);
    const lines = ['[core]', `\trepositoryformatversion = ${version ? version[1] : '0'}`, '\tbare = false'];
    if (objectFormat) lines.push('[extensions]', `\tobjectformat = ${objectFormat[1]}`);
    writeFileAtomic(configFile, lines.join('\n') + '\n', 0o644);
    fs.rmSync(path.join(this.repoDir, '.git', 'info', 'attributes'), { force: true });
  }

  /** Writes `patchFile`, redacted in memory first (a clear copy never reaches the disk). */
  async collectChanges(baseCommit: string, patchFile: string, logFile: string): Promise<Changes> {
    this.sanitizeConfig();
    await git(['add', '-A'], { cwd: this.repoDir });
    const diff = await git(
      ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', '--no-textconv', baseCommit, '--'],
      { cwd: this.repoDir, buffer: true },
    );
    const { patch, redactions, withheld } = await redactPatch(diff, this.repoDir);
    writeFileAtomic(patchFile, patch, 0o644);
    if (redactions > 0 || withheld.length > 0) {
      const line = patchRedactionSummary(redactions, withheld.length);
      appendRunnerLine(logFile, `${line}${withheld.length ? `: ${withheld.join(', ')}` : ''}`);
      log('warn', line, { withheld });
    }
    const headCommit = (await git(['rev-parse', 'HEAD'], { cwd: this.repoDir })).trim();
    return { headCommit, patchRedactions: redactions, patchFilesWithheld: withheld };
  }
}
