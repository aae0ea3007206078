// Long-lived sandboxes continue as new when their history grows: the next run keeps the same VM, lease,
// state, job outcome and search attributes, and its teardown still destroys exactly that VM, once. End to end,
// through the CLI and a worker process; test/workflows/continue-as-new.test.ts proves the workflow's side
// in-process (the continued run's lease timer ending the sandbox among it), in seconds.
import { jobListSchema } from '../cli/json-schemas';
import { createExampleRepo } from '../common/example-repo';
import { renewLeaseUpdate, type JobOutcome } from '../common/contract';
import { recordHistoryIfAsked } from './support/histories';
import { eventually, journal, liveSandboxes, SCRIPTED_AGENT, TestStack } from './support/stack';

/** Low enough that a few renewals fill a run; a parked sandbox's first run is longer than this already. */
const HISTORY_LIMIT = 40;

describe('continue-as-new of parked sandboxes', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack({ temporal: { continueAsNewAfterEvents: HISTORY_LIMIT } }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  /** Every run of the workflow, oldest first, as the visibility store lists them. */
  async function runsOf(workflowId: string): Promise<{ runId: string; status: string }[]> {
    const runs: { runId: string; start: number; status: string }[] = [];
    for await (const info of stack.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
      runs.push({ runId: info.runId, start: info.startTime.getTime(), status: info.status.name });
    }
    return runs.sort((a, b) => a.start - b.start).map(({ runId, status }) => ({ runId, status }));
  }

  const renew = async (id: string, ttl: string) => {
    expect((await stack.cli(['sandbox', 'lease', 'renew', id, '--ttl', ttl])).code).toBe(0);
  };

  test('a bare sandbox keeps its VM, lease and state across runs; stop, start and destroy work in a later run', async () => {
    expect((await stack.cli(['sandbox', 'new', '--id', 'can-bare', '--json'])).code).toBe(0);
    const first = await stack.waitForState('can-bare', (d) => d.state === 'RUNNING', 'RUNNING');
    const firstRunId = (await stack.client.workflow.getHandle('can-bare').describe()).runId;

    // Provisioning alone passes the limit: the parked sandbox hands over at once. Renewals fill the next runs:
    // one through the CLI, the rest as the CLI sends them (a process each would cost ~1 s apiece).
    await renew('can-bare', '20m');
    const handle = stack.client.workflow.getHandle('can-bare');
    for (let i = 1; i < 8; i++) await handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: (20 + i) * 60_000 }] });
    // Renewals racing a hand-over are not lost: Temporal moves an update that was not yet taken to the next run.
    const racing = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlMs: (40 + i) * 60_000 }] }),
      ),
    );
    const execution = await handle.describe();
    expect(execution.runId).not.toBe(firstRunId);
    expect(execution.historyLength).toBeLessThan(HISTORY_LIMIT + 15);

    const now = await stack.describe('can-bare');
    expect(now).toMatchObject({ state: 'RUNNING', jobStatus: 'RUNNING', vmid: first.vmid, address: first.address });
    expect(now.continuedRuns).toBeGreaterThanOrEqual(2);
    expect(racing.map((r) => r.leaseExpiresAt)).toContain(now.leaseExpiresAt); // whichever renewal came last
    const runs = await eventually('every run listed', async () => {
      const listed = await runsOf('can-bare');
      return listed.length === now.continuedRuns! + 1 ? listed : undefined;
    });
    expect(runs.map((r) => r.status)).toEqual([...runs.slice(1).map(() => 'CONTINUED_AS_NEW'), 'RUNNING']);
    // The timeline still tells how the sandbox came to be.
    expect(now.timeline.map((t) => t.state).slice(0, 4)).toEqual(['REQUESTED', 'PROVISIONING', 'BOOTING', 'READY']);
    // Search attributes came along: the list shows the sandbox as it is.
    const listed = JSON.parse((await stack.cli(['sandbox', 'list', '--json'])).stdout) as {
      sandboxes: { jobId: string; state: string; vmid: number }[];
    };
    expect(listed.sandboxes.find((s) => s.jobId === 'can-bare')).toMatchObject({ state: 'RUNNING', vmid: first.vmid });

    // Operations that run activities work in the continued run, on the same VM.
    expect((await stack.cli(['sandbox', 'stop', 'can-bare'])).code).toBe(0);
    expect((await stack.describe('can-bare')).state).toBe('STOPPED');
    expect((await stack.cli(['sandbox', 'start', 'can-bare'])).code).toBe(0);
    expect((await stack.describe('can-bare')).state).toBe('RUNNING');

    expect((await stack.cli(['sandbox', 'destroy', 'can-bare', '--yes'])).code).toBe(0);
    const outcome: JobOutcome = await stack.client.workflow.getHandle('can-bare').result();
    expect(outcome).toMatchObject({ status: 'COMPLETED', state: 'DESTROYED', vmid: first.vmid });
    expect(journal(stack, 'can-bare').map((e) => e.op)).toEqual(['clone', 'destroy']);
    expect(liveSandboxes(stack)).not.toContain(first.vmid);
    // The run that provisioned and handed over, and the last one: stop, start, destroy and teardown.
    await recordHistoryIfAsked('sbx-continued-first-run', 'can-bare', runs[0]!.runId);
    await recordHistoryIfAsked('sbx-continued-last-run', 'can-bare');
  });

  test('a keepalive job keeps its outcome and memo after it hands over; destroy ends it', async () => {
    const run = await stack.cli([
      ...['job', 'run', '--id', 'can-keep', '--repo', repo, '--task', 'note and stay', '--keepalive'],
      ...['--agent-command', SCRIPTED_AGENT, '--json'],
    ]);
    expect(run.code).toBe(0);
    const done = await stack.describe('can-keep');
    expect(done).toMatchObject({ jobStatus: 'COMPLETED', state: 'RUNNING', exitCode: 0 });

    await eventually('a hand-over', async () => ((await stack.describe('can-keep')).continuedRuns ?? 0) >= 1);
    expect(await stack.describe('can-keep')).toMatchObject({
      jobStatus: 'COMPLETED',
      exitCode: 0,
      message: done.message,
      vmid: done.vmid,
      leaseExpiresAt: done.leaseExpiresAt,
    });
    // The Web UI's current details are the continued run's own, up to date. Its fixed summary is gone: SDK 1.24's
    // continueAsNew has no staticSummary/staticDetails option and the server does not carry them over.
    const continued = stack.client.workflow.getHandle('can-keep');
    const metadata = await continued.query<{ currentDetails: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain('- state: **RUNNING**, job COMPLETED\n- VMID: ');
    expect(metadata.currentDetails).toContain('- outcome: COMPLETED, exit 0: ');
    expect(await (await continued.describe()).staticSummary()).toBeUndefined();
    // The memo (repo, task) is the continued run's too.
    const { jobs } = jobListSchema.parse(JSON.parse((await stack.cli(['job', 'list', '--json'])).stdout));
    expect(jobs.filter((job) => job.jobId === 'can-keep')).toEqual([
      expect.objectContaining({ task: 'note and stay', repo, executionStatus: 'RUNNING' }),
    ]); // once, though it has had several runs
    expect((await stack.cli(['job', 'diff', 'can-keep'])).stdout).toContain('+Agent note: note and stay');

    // The continued run tears the sandbox down (its lease expiring does too: the in-process test waits for that);
    // the job's status stays COMPLETED.
    expect((await stack.cli(['sandbox', 'destroy', 'can-keep', '--yes'])).code).toBe(0);
    const outcome: JobOutcome = await stack.client.workflow.getHandle('can-keep').result();
    expect(outcome).toMatchObject({ status: 'COMPLETED', state: 'DESTROYED', vmid: done.vmid });
    expect(journal(stack, 'can-keep').map((e) => e.op)).toEqual(['clone', 'destroy']);
  });
});
