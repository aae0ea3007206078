// Local repositories anywhere: a path as the user types it (relative, ~, file://) runs the committed
// state of its ref; inputs that cannot work are refused at the door (exit 2) and start no workflow.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { createExampleRepo } from '../common/example-repo';
import { recordHistoryIfAsked } from './support/histories';
import { SCRIPTED_AGENT, TestStack } from './support/stack';

describe('local repositories', () => {
  let stack: TestStack;
  let repo: string;
  let head: string;

  const jobWorkflows = async () =>
    (await stack.client.workflow.count(`TaskQueue = "${stack.taskQueue}" AND WorkflowType = "jobWorkflow"`)).count;
  const run = (id: string, repoArg: string, extra: string[] = [], options: { cwd?: string; home?: string } = {}) =>
    stack.cli(
      [
        ...['job', 'run', '--repo', repoArg, '--task', 'greet', '--id', id, '--json'],
        ...['--agent-command', SCRIPTED_AGENT, ...extra],
      ],
      { cwd: options.cwd, env: options.home ? { HOME: options.home } : {} },
    );

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    // Where a user keeps a project: in their home, outside anything agentlab was told about.
    repo = await createExampleRepo(join(stack.home, 'projects'));
    head = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout;
  });
  afterAll(() => stack.close());

  test.each([
    ['a relative path', 'job-rel', () => ({ arg: 'projects/hello-repo', cwd: stack.home })],
    ['~/…', 'job-tilde', () => ({ arg: '~/projects/hello-repo', home: stack.home })],
    ['a file:// URL', 'job-file-url', () => ({ arg: `file://${repo}` })],
  ])('%s runs the committed state and records the commit', async (_what, id, given) => {
    const { arg, cwd, home } = given() as { arg: string; cwd?: string; home?: string };
    const result = await run(id, arg, [], { cwd, home });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'COMPLETED', repo, ref: 'HEAD' });
    expect(await stack.describe(id)).toMatchObject({ repo, ref: 'HEAD', commit: head });
    // A replay fixture of today's job path: request validation, the local repository's pinned commit.
    if (id === 'job-rel') await recordHistoryIfAsked('job-local-repo', id);
  });

  test('a dirty working tree is reported; the job sees the commit, not the edits', async () => {
    writeFileSync(join(repo, 'README.md'), 'an uncommitted edit\n');
    writeFileSync(join(repo, 'scratch.txt'), 'untracked\n');
    try {
      const result = await run('job-dirty', repo);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(
        `note: ${repo} has uncommitted changes in 2 file(s) that the job will not see: it gets the committed state of HEAD (${head.slice(0, 12)})`,
      );
      const patch = (await stack.cli(['job', 'diff', 'job-dirty'])).stdout;
      expect(patch).toContain('Agent note: greet');
      expect(patch).not.toContain('an uncommitted edit');
      expect(patch).not.toContain('scratch.txt');
    } finally {
      await execa('git', ['-C', repo, 'checkout', '--', 'README.md']);
      await execa('git', ['-C', repo, 'clean', '-fdq']);
    }
  });

  test('--ref pins the commit it names when the job starts', async () => {
    const git = (...args: string[]) =>
      execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-C', repo, ...args]);
    await git('switch', '-q', '-c', 'feature');
    writeFileSync(join(repo, 'FEATURE.md'), 'on the feature branch\n');
    await git('add', 'FEATURE.md');
    await git('commit', '-qm', 'feature');
    const feature = (await git('rev-parse', 'HEAD')).stdout;
    await git('switch', '-q', 'main');
    const result = await run('job-ref', repo, ['--ref', 'feature']);
    expect(result.code).toBe(0);
    expect(await stack.describe('job-ref')).toMatchObject({ ref: 'feature', commit: feature });
  });

  describe('refused at the door: exit 2, no workflow', () => {
    const plainDir = () => {
      const dir = join(stack.home, 'not-a-repo');
      mkdirSync(dir, { recursive: true });
      return dir;
    };
    const emptyRepo = async () => {
      const dir = join(stack.home, 'empty-repo');
      await execa('git', ['init', '-q', dir]);
      return { repo: dir };
    };
    test.each([
      ['not a git repository', () => ({ repo: plainDir() }), /--repo: .*not-a-repo is not a git repository/],
      ['a path that does not exist', () => ({ repo: '/nonexistent/agentlab/repo' }), /does not exist/],
      ['a repository without commits', emptyRepo, /has no commits yet/],
      ['an unknown ref', () => ({ repo, ref: 'no-such-branch' }), /--ref: "no-such-branch" names no commit in /],
      ['a ref git would refuse', () => ({ repo, ref: 'refs/heads/../../x' }), /--ref: .*"\.\."/],
      ['a ref that is an option', () => ({ repo, ref: '--upload-pack=x' }), /--ref: .*command-line option/],
      [
        'credentials in the URL',
        () => ({ repo: 'https://user:hunter2@git.example.invalid/r.git' }),
        /--repo: "https:\/\/\*\*\*@git\.example\.invalid\/r\.git" carries credentials.*agentlab secrets set-git/,
      ],
      ['a path with a Proxmox profile', () => ({ repo, profile: 'yolo-ephemeral' }), /only a local-backend profile/],
    ])('%s', async (_what, input, message) => {
      const given = (await input()) as { repo: string; ref?: string; profile?: string };
      const before = await jobWorkflows();
      const result = await run('job-refused', given.repo, [
        ...(given.ref ? ['--ref', given.ref] : []),
        ...(given.profile ? ['--profile', given.profile] : []),
      ]);
      expect(result.code).toBe(2);
      expect(JSON.parse(result.stdout).error.message).toMatch(message);
      expect(result.stdout + result.stderr).not.toContain('hunter2');
      await expect(stack.client.workflow.getHandle('job-refused').describe()).rejects.toThrow(/not found/i);
      expect(await jobWorkflows()).toBe(before);
    });
  });

  test('a request from another client meets the same rules in the workflow, before any VM exists', async () => {
    for (const [id, repoUrl] of [
      ['job-direct-creds', 'https://user:hunter2@git.example.invalid/r.git'],
      ['job-direct-path', repo], // a path without the commit the CLI pins
    ] as const) {
      const handle = await stack.client.workflow.start('jobWorkflow', {
        workflowId: id,
        taskQueue: stack.taskQueue,
        args: [{ jobId: id, repo: repoUrl, task: 't', profile: 'local', agentCommand: SCRIPTED_AGENT }],
      });
      const outcome = await handle.result();
      expect(outcome).toMatchObject({ status: 'FAILED', message: expect.stringMatching(/^invalid job request: /) });
      expect(outcome.message).toMatch(id === 'job-direct-creds' ? /repo: .*carries credentials/ : /commit: /);
      expect((await stack.describe(id)).vmid).toBeUndefined();
    }
  });
});
