// `agentlab job apply`: a real job's patch becomes a commit on a new branch of the user's repository, and
// nothing the user has (HEAD, index, working tree, other refs) moves, whether it succeeds or is refused.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { jobApplySchema } from '../cli/json-schemas';
import { createExampleRepo } from '../common/example-repo';
import { serveRepo } from './support/git-daemon';
import { SCRIPTED_AGENT, TestStack } from './support/stack';

const TASK = 'add a greeting';

describe('agentlab job apply', () => {
  let stack: TestStack;
  let repo: string;
  /** The commit the jobs started from. */
  let base: string;
  /** No user identity anywhere (no global, XDG or system config): git must fall back to agentlab's. */
  let noIdentity: NodeJS.ProcessEnv;

  const git = async (...args: string[]) =>
    (await execa('git', ['--no-optional-locks', '-C', repo, ...args], { stripFinalNewline: false })).stdout;
  const commitAs = (...args: string[]) =>
    execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-C', repo, ...args]);
  const apply = (args: string[], env: NodeJS.ProcessEnv = noIdentity) => stack.cli(['job', 'apply', ...args], { env });
  const runJob = async (id: string, repoArg: string, agent = SCRIPTED_AGENT) => {
    const result = await stack.cli([
      ...['job', 'run', '--repo', repoArg, '--task', TASK, '--id', id, '--agent-command', agent, '--json'],
    ]);
    if (result.code !== 0) throw new Error(`job ${id} failed: ${result.stdout}${result.stderr}`);
  };
  /** Everything of the user's that apply must leave alone, as bytes. */
  const userState = async () => ({
    head: await git('rev-parse', 'HEAD'),
    headRef: await git('symbolic-ref', 'HEAD'),
    status: await git('status', '--porcelain=v2', '--branch', '--untracked-files=all'),
    cached: await git('diff', '--cached'),
    index: readFileSync(join(repo, '.git', 'index')),
    readme: readFileSync(join(repo, 'README.md')),
    greet: readFileSync(join(repo, 'greet.sh')),
  });
  const refs = () => git('for-each-ref');
  const lines = (text: string) => text.split('\n').filter(Boolean).sort();

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    repo = await createExampleRepo(join(stack.home, 'projects'));
    base = (await git('rev-parse', 'HEAD')).trim();
    const emptyHome = join(stack.home, 'no-identity');
    mkdirSync(emptyHome);
    noIdentity = { HOME: emptyHome, XDG_CONFIG_HOME: emptyHome, GIT_CONFIG_NOSYSTEM: '1' };
    const daemon = await serveRepo(repo);
    try {
      await Promise.all([
        runJob('job-apply-local', repo),
        runJob('job-apply-url', daemon.url),
        runJob('job-apply-nothing', repo, 'true'),
      ]);
    } finally {
      await daemon.close();
    }
  }, 300_000);
  afterAll(() => stack.close());

  test('commits the patch on agentlab/<job> over the base; HEAD, index and working tree stay byte for byte', async () => {
    // The user is mid-work: a staged edit, an unstaged one on a file the patch changes, an untracked file.
    writeFileSync(join(repo, 'greet.sh'), 'echo staged work\n');
    await git('add', 'greet.sh');
    writeFileSync(join(repo, 'README.md'), 'an uncommitted edit\n');
    writeFileSync(join(repo, 'scratch.txt'), 'untracked\n');
    try {
      const before = await userState();
      const refsBefore = await refs();

      const result = await apply(['job-apply-local']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const branch = 'agentlab/job-apply-local';
      const commit = (await git('rev-parse', branch)).trim();
      expect(result.stdout).toBe(
        `applied job job-apply-local as branch ${branch} (commit ${commit.slice(0, 7)}) on ${repo}; ` +
          `check it out with: git -C ${repo} switch ${branch}\n`,
      );

      expect(await userState()).toEqual(before);
      expect(readFileSync(join(repo, 'scratch.txt'), 'utf8')).toBe('untracked\n');
      // One ref more, and only that one.
      expect(lines(await refs())).toEqual([...lines(refsBefore), `${commit} commit\trefs/heads/${branch}`].sort());

      // One commit on the job's base, whose tree is the base plus exactly the agent's change.
      expect((await git('rev-list', '--parents', '-n1', branch)).trim()).toBe(`${commit} ${base}`);
      expect(await git('diff', '--name-only', base, branch)).toBe('NOTES.md\nREADME.md\n');
      expect(await git('show', `${branch}:README.md`)).toBe(
        (await git('show', `${base}:README.md`)) + `\nAgent note: ${TASK}\n`,
      );
      expect(await git('show', `${branch}:NOTES.md`)).toBe(`# Notes from the scripted agent\n\nTask: ${TASK}\n`);
      expect(await git('log', '-1', '--format=%an <%ae>|%cn <%ce>|%s', branch)).toBe(
        'agentlab <agentlab@localhost>|agentlab <agentlab@localhost>|' + `agentlab job job-apply-local: ${TASK}\n`,
      );
    } finally {
      await git('reset', '-q', '--hard');
      await git('clean', '-fdq');
    }
  });

  test('a patch that conflicts with --onto is refused with git’s reason; no branch, nothing moves', async () => {
    await commitAs('switch', '-q', '-c', 'conflicting');
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    writeFileSync(join(repo, 'README.md'), readme.replace(/[^\n]*\n$/, 'A different last line.\n'));
    await commitAs('commit', '-qam', 'conflicting README');
    await commitAs('switch', '-q', 'main');
    const before = await userState();
    const refsBefore = await refs();

    const result = await apply(['job-apply-local', '--onto', 'conflicting', '--branch', 'try-conflict']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/error: patch failed: README\.md:\d+/);
    expect(result.stderr).toMatch(/README\.md: patch does not apply/);
    expect(await refs()).toBe(refsBefore);
    expect(await userState()).toEqual(before);
  });

  test('--onto applies on the commit it names', async () => {
    await commitAs('switch', '-q', '-c', 'elsewhere');
    writeFileSync(join(repo, 'OTHER.md'), 'unrelated\n');
    await commitAs('add', 'OTHER.md');
    await commitAs('commit', '-qm', 'unrelated');
    await commitAs('switch', '-q', 'main');
    const elsewhere = (await git('rev-parse', 'elsewhere')).trim();

    const result = await apply(['job-apply-local', '--onto', 'elsewhere', '--branch', 'on-elsewhere', '--json']);
    expect(result.code).toBe(0);
    expect(jobApplySchema.parse(JSON.parse(result.stdout))).toMatchObject({ baseCommit: elsewhere });
    expect((await git('rev-parse', 'on-elsewhere^')).trim()).toBe(elsewhere);
    expect(await git('ls-tree', '--name-only', 'on-elsewhere')).toBe('NOTES.md\nOTHER.md\nREADME.md\ngreet.sh\n');
  });

  test('--json: one document naming the branch, its commit and base; the user’s git identity signs it', async () => {
    const ada = { GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: 'user.name', GIT_CONFIG_VALUE_0: 'Ada' };
    const result = await apply(['job-apply-local', '--branch', 'review/greeting', '--json'], {
      ...noIdentity,
      ...ada,
      GIT_CONFIG_KEY_1: 'user.email',
      GIT_CONFIG_VALUE_1: 'ada@example.invalid',
    });
    expect(result.code).toBe(0);
    const doc = jobApplySchema.parse(JSON.parse(result.stdout));
    expect(doc).toEqual({
      jobId: 'job-apply-local',
      repo,
      branch: 'review/greeting',
      commit: (await git('rev-parse', 'review/greeting')).trim(),
      baseCommit: base,
      filesChanged: 2,
    });
    expect(await git('log', '-1', '--format=%an <%ae>', 'review/greeting')).toBe('Ada <ada@example.invalid>\n');
  });

  test('the base is the commit the job started from, not HEAD; a repository without it is refused (exit 1)', async () => {
    // The user has moved on since the job started: the branch still starts where the agent did.
    await commitAs('switch', '-q', '-c', 'moved-on');
    writeFileSync(join(repo, 'LATER.md'), 'later work\n');
    await commitAs('add', 'LATER.md');
    await commitAs('commit', '-qm', 'later work');
    try {
      const result = await apply(['job-apply-local', '--branch', 'from-base']);
      expect(result.code).toBe(0);
      expect((await git('rev-parse', 'from-base^')).trim()).toBe(base);
    } finally {
      await commitAs('switch', '-q', 'main');
    }

    // Same files, other history: the job's commit is not there, and apply says how to choose one.
    const other = await createExampleRepo(join(stack.home, 'other'));
    const otherGit = async (...args: string[]) =>
      (await execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-C', other, ...args])).stdout;
    await otherGit('commit', '-q', '--amend', '-m', 'another history');
    const otherRefs = await otherGit('for-each-ref');
    const refused = await apply(['job-apply-local', '--repo', other]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`job job-apply-local started from commit ${base.slice(0, 12)}, which ${other}`);
    expect(refused.stderr).toContain('choose a base with --onto <rev>');
    expect(await otherGit('for-each-ref')).toBe(otherRefs);

    const onto = await apply(['job-apply-local', '--repo', other, '--onto', 'HEAD']);
    expect(onto.code).toBe(0);
    expect(await otherGit('rev-parse', 'agentlab/job-apply-local^')).toBe(await otherGit('rev-parse', 'HEAD'));
  });

  test('a job still RUNNING has no patch yet (exit 1)', async () => {
    await stack.startSleepingJob('job-apply-running', repo);
    try {
      const result = await apply(['job-apply-running']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('job job-apply-running has no changes.patch yet: it is RUNNING');
    } finally {
      await stack.cli(['job', 'cancel', '--yes', 'job-apply-running']);
      await stack.waitForClose('job-apply-running');
    }
  });

  test('an existing branch is refused (exit 1) and kept as it was', async () => {
    const refsBefore = await refs();
    const result = await apply(['job-apply-local', '--branch', 'main']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('branch main already exists');
    expect(await refs()).toBe(refsBefore);
  });

  test.each(['bad..name', '-x', 'HEAD', '@{-1}'])('--branch %s is refused (exit 2)', async (branch) => {
    const refsBefore = await refs();
    const result = await apply(['job-apply-local', `--branch=${branch}`, '--json']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout).error.message).toContain('is not a valid branch name');
    expect(await refs()).toBe(refsBefore);
  });

  test('a job on a URL needs --repo (exit 2); with it, applies to that clone', async () => {
    const refused = await apply(['job-apply-url']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--repo is required: job job-apply-url's repository is a URL \(git:\/\/127\.0\.0\.1/,
    );

    const bare = join(stack.home, 'bare.git');
    await execa('git', ['clone', '-q', '--bare', repo, bare]);
    const result = await apply(['job-apply-url', '--repo', bare]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^applied job job-apply-url as branch agentlab\/job-apply-url \(commit \w+\) on .*bare\.git\n$/,
    );
    const show = await execa('git', ['-C', bare, 'show', 'agentlab/job-apply-url:NOTES.md']);
    expect(show.stdout).toContain(`Task: ${TASK}`);
  });

  test('refusals that change nothing: unknown job (3), no patch (1), empty patch (1), not a repository (2)', async () => {
    // A request the workflow refuses before any sandbox: the job ends FAILED with no patch.
    await stack.client.workflow.execute('jobWorkflow', {
      workflowId: 'job-apply-nopatch',
      taskQueue: stack.taskQueue,
      args: [{ jobId: 'job-apply-nopatch', repo, task: TASK, profile: 'local', agentCommand: SCRIPTED_AGENT }],
    });
    const notARepo = join(stack.home, 'not-a-repo');
    mkdirSync(notARepo);
    const refsBefore = await refs();

    const cases: [string[], number, RegExp][] = [
      [['job-apply-missing'], 3, /job-apply-missing not found/],
      [['job-apply-nopatch'], 1, /job job-apply-nopatch has no changes\.patch: it ended FAILED/],
      [['job-apply-nothing'], 1, /job job-apply-nothing changed nothing/],
      [['job-apply-local', '--repo', notARepo], 2, /--repo: .*not-a-repo is not a git repository \(/],
      [['job-apply-local', '--onto', 'no-such-rev'], 2, /--onto: "no-such-rev" names no commit in /],
    ];
    for (const [args, code, message] of cases) {
      const result = await apply(args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({
        args,
        code,
        stderr: expect.stringMatching(message),
      });
    }
    expect(await refs()).toBe(refsBefore);
  });
});
