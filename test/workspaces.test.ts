// Persistent workspaces on the local backend: a workspace outlives its sandboxes, is held by one sandbox at a
// time (others wait, or fail at once with --no-wait), and survives worker crashes during attach and detach.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workspaceDocumentSchema } from '../cli/json-schemas';
import { jobStartOptions } from '../common/job-start';
import { createExampleRepo } from '../common/example-repo';
import { sandboxDir } from '../backends/local/sandbox-dir';
import { workspaceWorkflowId } from '../common/workspace';
import { recordHistoryIfAsked } from './support/histories';
import { eventually, journal, liveSandboxes, SCRIPTED_AGENT, setFaults, TestStack } from './support/stack';

describe('persistent workspaces (local backend)', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack({ admission: { cores: 256, memoryMb: 512 * 1024, reclaimInterval: '2s' } }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  const cli = async (args: string[]) => {
    const result = await stack.cli(args);
    if (result.code !== 0) throw new Error(`agentlab ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result;
  };
  const show = async (name: string) =>
    workspaceDocumentSchema.parse(JSON.parse((await cli(['workspace', 'show', name, '--json'])).stdout));
  const runJob = (id: string, workspace: string, agentCommand: string, extra: string[] = []) =>
    stack.cli([
      ...['job', 'run', '--id', id, '--repo', repo, '--task', 'use the workspace', '--workspace', workspace],
      ...['--agent-command', agentCommand, ...extra],
    ]);
  const folder = (name: string) => join(stack.dataDir, 'workspaces', name, 'data');

  /** A workspace outlives two jobs: the second reads what the first wrote, in the checkout it fetched into. */
  async function outlivesTwoJobs(): Promise<void> {
    const created = workspaceDocumentSchema.parse(
      JSON.parse((await cli(['workspace', 'create', 'ws-two-jobs', '--size', '2G', '--json'])).stdout),
    );
    expect(created).toMatchObject({ status: 'AVAILABLE', sizeGb: 2, node: stack.node, holder: null });

    // The first job leaves a note in the workspace, a stray file and a mark inside .git in its checkout.
    const first = await runJob(
      'ws-first',
      'ws-two-jobs',
      `echo first > "$AGENTLAB_WORKSPACE/note.txt" && echo stray > stray.txt && touch .git/first-was-here && ${SCRIPTED_AGENT}`,
    );
    expect(first.code).toBe(0);
    // The second: the note is there, the checkout is the same repository (fetched, not cloned), back at the ref.
    const second = await runJob(
      'ws-second',
      'ws-two-jobs',
      [
        'test "$(cat "$AGENTLAB_WORKSPACE/note.txt")" = first',
        'test "$PWD" = "$AGENTLAB_WORKSPACE/repo"',
        'test -e .git/first-was-here',
        'test ! -e stray.txt',
        'test ! -e NOTES.md',
      ].join(' && '),
    );
    expect(second.code).toBe(0);

    const d = await show('ws-two-jobs');
    expect(d).toMatchObject({ status: 'AVAILABLE', holder: null, waiting: [] });
    expect(d.attachments.map((a) => a.jobId)).toEqual(['ws-first', 'ws-second']);
    const [a, b] = d.attachments;
    expect(a!.vmid).not.toBeNull();
    expect(b!.vmid).not.toBeNull(); // the local backend reuses a destroyed sandbox's VMID
    expect(a!.releasedAt).not.toBeNull();
    expect(b!.releasedAt).not.toBeNull();
    // Both sandboxes are gone (the backend's journal: the other scenario may reuse their VMIDs); the folder is not.
    for (const id of ['ws-first', 'ws-second'])
      expect(journal(stack, id).map((e) => e.op)).toEqual(['clone', 'destroy']);
    expect(readFileSync(join(folder('ws-two-jobs'), 'note.txt'), 'utf8')).toBe('first\n');
    expect((await cli(['workspace', 'list'])).stdout).toMatch(/ws-two-jobs +AVAILABLE +2G/);

    await recordHistoryIfAsked('job-workspace-fetched', 'ws-second');
    // Destroy deletes it; the name is free again.
    await cli(['workspace', 'destroy', 'ws-two-jobs', '--yes']);
    expect(existsSync(folder('ws-two-jobs'))).toBe(false);
    expect((await show('ws-two-jobs')).status).toBe('DESTROYED');
    await recordHistoryIfAsked('workspace-destroyed', workspaceWorkflowId('ws-two-jobs'));
    expect((await stack.cli(['job', 'run', '--repo', repo, '--task', 't', '--workspace', 'ws-two-jobs'])).code).toBe(1);
  }

  /** A second attach waits until the holder is destroyed; --no-wait fails at once, naming the holder. */
  async function secondAttachWaits(): Promise<void> {
    await cli(['workspace', 'create', 'ws-held', '--size', '1G']);
    await cli(['sandbox', 'new', '--id', 'ws-holder', '--workspace', 'ws-held', '--detach']);
    await stack.waitForState('ws-holder', (d) => d.state === 'RUNNING', 'RUNNING');

    const [noWait, destroyRefused] = await Promise.all([
      stack.cli(['sandbox', 'new', '--id', 'ws-nowait', '--workspace', 'ws-held', '--no-wait']),
      stack.cli(['workspace', 'destroy', 'ws-held', '--yes']),
    ]);
    expect(noWait.code).toBe(1);
    expect(noWait.stderr).toContain('workspace ws-held is attached to the sandbox of job ws-holder');
    expect(destroyRefused.code).toBe(1);
    // The workflow's own validator names the workspace (its argument once shadowed the workspace's input).
    expect(destroyRefused.stderr).toContain(
      'workspace ws-held is attached to the sandbox of job ws-holder: destroy that sandbox first',
    );

    // The same refusal from the workflow itself, for a client that skips the CLI's check.
    await stack.client.workflow.start(
      'jobWorkflow',
      jobStartOptions(
        { jobId: 'ws-nowait-direct', profile: 'local', workspace: { name: 'ws-held', wait: false } },
        stack.taskQueue,
      ),
    );
    // The waiting one: no VM while the holder has the workspace.
    await cli([
      'job',
      'run',
      '--id',
      'ws-waiter',
      '--repo',
      repo,
      '--task',
      't',
      '--workspace',
      'ws-held',
      '--detach',
      '--agent-command',
      `test -e "$AGENTLAB_WORKSPACE"`,
    ]);
    await eventually('ws-waiter in line', async () =>
      (await show('ws-held')).waiting.some((w) => w.jobId === 'ws-waiter'),
    );
    await stack.waitForClose('ws-nowait-direct');
    expect(await stack.describe('ws-nowait-direct')).toMatchObject({
      jobStatus: 'FAILED',
      message: 'workspace ws-held is attached to the sandbox of job ws-holder',
    });
    expect((await stack.describe('ws-waiter')).vmid).toBeUndefined();

    await cli(['sandbox', 'destroy', 'ws-holder', '--yes']);
    await stack.waitForClose('ws-waiter');
    const [holder, waiter] = await Promise.all([stack.describe('ws-holder'), stack.describe('ws-waiter')]);
    expect(waiter).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    const d = await show('ws-held');
    expect(d.attachments.map((a) => a.jobId)).toEqual(['ws-holder', 'ws-waiter']);
    // The waiter got it only once the holder's VM was destroyed.
    const holderDestroyed = holder.timeline.find((t) => t.state === 'DESTROYED')!.at;
    expect(Date.parse(d.attachments[1]!.grantedAt)).toBeGreaterThanOrEqual(Math.floor(holderDestroyed / 1000) * 1000);
    expect(d.holder).toBeNull();
    await recordHistoryIfAsked('job-waited-for-workspace', 'ws-waiter');
  }

  test('a workspace outlives two jobs; a second attach waits for the holder, or fails at once with --no-wait', async () => {
    // Independent workspaces: both scenarios at once, to keep the suite short.
    await Promise.all([outlivesTwoJobs(), secondAttachWaits()]);
  });

  test('a worker SIGKILLed during attach and during detach leaves the workspace whole, held by one sandbox or none', async () => {
    await cli(['workspace', 'create', 'ws-crash', '--size', '1G']);
    setFaults(stack, { workspaceDelayMs: 2000 });
    const handle = stack.client.workflow.getHandle('ws-crashy');
    /** Kills the worker once `activity` is running, then starts another. */
    const crashDuring = async (activity: string) => {
      let seen: string[] = [];
      await eventually(
        `${activity} running`,
        async () => {
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          seen = pending.map((p) => `${p.activityType?.name}:${p.state}`);
          return pending.some((p) => p.activityType?.name === activity);
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message} (pending: ${seen.join(', ') || 'none'})`);
      });
      await stack.killWorkers('SIGKILL');
      await stack.startWorker();
    };
    /** The sandboxes whose folder says the workspace is attached to them. */
    const attachedTo = () =>
      liveSandboxes(stack).filter((vmid) => existsSync(join(sandboxDir(stack.dataDir, vmid), 'workspace.json')));

    await cli([
      'job',
      'run',
      '--id',
      'ws-crashy',
      '--repo',
      repo,
      '--task',
      't',
      '--workspace',
      'ws-crash',
      '--detach',
      '--agent-command',
      'echo survived > "$AGENTLAB_WORKSPACE/crash.txt"',
    ]);
    await crashDuring('attachWorkspace');
    expect((await show('ws-crash')).holder?.jobId).toBe('ws-crashy');
    expect(attachedTo().length).toBeLessThanOrEqual(1);
    await crashDuring('detachWorkspace');
    expect(attachedTo().length).toBeLessThanOrEqual(1);
    await stack.waitForClose('ws-crashy', 120_000);
    setFaults(stack, {});

    expect(await stack.describe('ws-crashy')).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    const d = await show('ws-crash');
    expect(d).toMatchObject({ status: 'AVAILABLE', holder: null });
    expect(d.attachments).toHaveLength(1);
    expect(attachedTo()).toEqual([]);
    expect(readFileSync(join(folder('ws-crash'), 'crash.txt'), 'utf8')).toBe('survived\n');
  });
});
