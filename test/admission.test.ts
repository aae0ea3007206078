// Admission by capacity: a host admits sandboxes up to its capacity and queues the rest, first come first
// served, visibly (QUEUED with a place in line), durably (worker crashes, continue-as-new), leaking no slot.
import { jobDocumentSchema, jobListSchema } from '../cli/json-schemas';
import { admissionLineQuery, admissionWorkflowId, type AdmissionView } from '../common/admission';
import type { JobDescription } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { recordHistoryIfAsked } from './support/histories';
import { eventually, SCRIPTED_AGENT, sleep, TestStack } from './support/stack';

/** Two default-sized local sandboxes (2 cores, 2048 MB each) fit at once. */
const ROOM_FOR_TWO = { cores: 4, memoryMb: 4096, cpuOvercommit: 1, memoryOvercommit: 1, reclaimInterval: '2s' };

describe('admission by capacity', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack({
      admission: ROOM_FOR_TWO,
      // Small, so the admission workflow and parked sandboxes hand their state over to fresh runs mid-test.
      temporal: { continueAsNewAfterEvents: 30 },
      profiles: [{ name: 'local-huge', backend: 'local', resources: { cores: 8, memoryMb: 1024 } }],
    }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  /** Bare sandboxes a test holds capacity with; one that failed half-way must not leave them to the next. */
  const holders: string[] = [];
  afterEach(async () => {
    for (const id of holders.splice(0)) {
      await stack.cli(['sandbox', 'destroy', id, '--yes', '--force']);
      await stack.waitForClose(id);
    }
  });

  const agent = (seconds: number, exit = 0) =>
    `SCRIPTED_AGENT_SLEEP=${seconds} SCRIPTED_AGENT_EXIT=${exit} ${SCRIPTED_AGENT}`;
  const startJob = async (id: string, agentCommand: string, profile = 'local') => {
    const started = await stack.cli([
      ...['job', 'run', '--repo', repo, '--task', 'wait', '--id', id, '--profile', profile, '--detach'],
      ...['--agent-command', agentCommand],
    ]);
    expect(started.code).toBe(0);
  };
  const startBareSandbox = async (id: string) => {
    holders.push(id);
    expect((await stack.cli(['sandbox', 'new', '--id', id, '--detach'])).code).toBe(0);
  };
  const line = (): Promise<AdmissionView> =>
    stack.client.workflow.getHandle(admissionWorkflowId(stack.node)).query(admissionLineQuery);
  const waitingIds = async () => (await line()).waiting.map((e) => e.holder);
  /** What `job list --json` says of these jobs, by id. */
  const listed = async (ids: string[]) => {
    const { jobs } = jobListSchema.parse(JSON.parse((await stack.cli(['job', 'list', '--json'])).stdout));
    return new Map(jobs.filter((j) => ids.includes(j.jobId)).map((j) => [j.jobId, j]));
  };
  const finalDescriptions = async (ids: string[]) => {
    await Promise.all(ids.map((id) => stack.waitForClose(id, 120_000)));
    return Promise.all(ids.map((id) => stack.describe(id)));
  };
  const finalDescription = async (id: string) => (await finalDescriptions([id]))[0]!;
  const noSlotHeld = () =>
    eventually('every slot released', async () => {
      const view = await line();
      return view.holding.length === 0 && view.waiting.length === 0;
    });

  test('5 jobs at once on room for 2: the others wait visibly in line, and all complete in order', async () => {
    const ids = ['adm-a', 'adm-b', 'adm-c', 'adm-d', 'adm-e'];
    await Promise.all(ids.map((id) => startJob(id, agent(3))));

    // Three wait, with places 1..3, in `job list --json` and in `job show`.
    const waiting = await eventually('three jobs waiting', async () => {
      const jobs = await listed(ids);
      const places = ids.filter((id) => jobs.get(id)?.placeInLine !== undefined);
      return places.length === 3 ? jobs : undefined;
    });
    const inLine = ids
      .filter((id) => waiting.get(id)!.placeInLine !== undefined)
      .sort((a, b) => waiting.get(a)!.placeInLine! - waiting.get(b)!.placeInLine!);
    expect(inLine.map((id) => waiting.get(id)!.placeInLine)).toEqual([1, 2, 3]);
    for (const id of inLine) expect(waiting.get(id)).toMatchObject({ jobStatus: 'QUEUED', state: 'REQUESTED' });
    // The last in line waits at least one more round: long enough for `job show` on a busy machine.
    const last = inLine[2]!;
    const [shownJson, shownText] = await Promise.all([
      stack.cli(['job', 'show', last, '--json']),
      stack.cli(['job', 'show', last]),
    ]);
    expect(jobDocumentSchema.parse(JSON.parse(shownJson.stdout))).toMatchObject({
      status: 'QUEUED',
      placeInLine: expect.any(Number),
    });
    expect(shownText.stdout).toMatch(/Place in line: +[123] \(waiting for capacity on /);

    // Watched while they run: jobs only ever leave the line from its head.
    const seenLines: string[][] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seenLines.push(await waitingIds());
        await sleep(200);
      }
    })();
    const done = await finalDescriptions(ids);
    watching = false;
    await watcher;
    for (const seen of seenLines) expect(seen).toEqual(inLine.slice(inLine.length - seen.length));
    expect(seenLines.some((seen) => seen.length === 0)).toBe(true);

    for (const d of done) expect(d).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    expect(maxHeldAtOnce(done)).toBeLessThanOrEqual(2);
    // First come, first served: those in line were admitted after the first two, in the order of their places.
    const admittedAt = (id: string) => provisioningStart(done.find((d) => d.jobId === id)!);
    const admittedOrder = [...ids].sort((a, b) => admittedAt(a) - admittedAt(b));
    expect(admittedOrder.slice(2).sort()).toEqual([...inLine].sort());
    // Places 1 and 2 may be granted in one batch (two releases at once); place 3 needs a third slot.
    expect(admittedAt(inLine[2]!)).toBeGreaterThan(Math.max(admittedAt(inLine[0]!), admittedAt(inLine[1]!)));
    await noSlotHeld();
    await recordHistoryIfAsked('job-admitted-after-waiting', inLine[0]!);
  });

  test('a queued job that is cancelled or destroyed leaves the line, and the others move up', async () => {
    await startBareSandbox('adm-hold-1');
    await startBareSandbox('adm-hold-2');
    await stack.waitForState('adm-hold-2', (d) => d.state === 'RUNNING', 'RUNNING');
    for (const id of ['adm-q1', 'adm-q2']) {
      await startJob(id, agent(1));
      await eventually(`${id} in line`, async () => (await waitingIds()).includes(id));
    }
    // The last one followed by `job run`, which tells where it waits as its place changes.
    const followed = stack.cli([
      ...['job', 'run', '--repo', repo, '--task', 'wait', '--id', 'adm-q3'],
      ...['--agent-command', agent(1)],
    ]);
    await eventually('adm-q3 in line', async () => (await waitingIds()).includes('adm-q3'));
    expect(await waitingIds()).toEqual(['adm-q1', 'adm-q2', 'adm-q3']);
    // The Web UI's "current details": the job says where it waits, the admission workflow shows the line.
    const details = async (workflowId: string) =>
      (
        await stack.client.workflow
          .getHandle(workflowId)
          .query<{ currentDetails: string }>('__temporal_workflow_metadata')
      ).currentDetails;
    expect(await details('adm-q1')).toContain(`Waiting for capacity on node ${stack.node}`);
    expect(await details(admissionWorkflowId(stack.node))).toMatch(/Waiting\*\* \(3\):\n1\. adm-q1 [^]*3\. adm-q3/);

    expect((await stack.cli(['job', 'cancel', 'adm-q1', '--yes'])).code).toBe(0);
    await eventually('q1 out of line', async () => (await waitingIds()).join() === 'adm-q2,adm-q3');
    expect((await listed(['adm-q3'])).get('adm-q3')!.placeInLine).toBe(2);

    expect((await stack.cli(['sandbox', 'destroy', 'adm-q2', '--yes', '--force'])).code).toBe(0);
    await eventually('q2 out of line', async () => (await waitingIds()).join() === 'adm-q3');
    expect((await listed(['adm-q3'])).get('adm-q3')!.placeInLine).toBe(1);

    for (const q of await finalDescriptions(['adm-q1', 'adm-q2'])) {
      expect(q.jobStatus).toBe('CANCELLED');
      expect(q.vmid).toBeUndefined(); // left before any VM existed
    }
    await recordHistoryIfAsked('job-cancelled-in-line', 'adm-q1');

    // Capacity frees: the last one runs.
    for (const id of ['adm-hold-1', 'adm-hold-2']) {
      expect((await stack.cli(['sandbox', 'destroy', id, '--yes'])).code).toBe(0);
    }
    const q3 = await finalDescription('adm-q3');
    expect(q3).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    const { code, stderr } = await followed;
    expect(code).toBe(0);
    expect(stderr).toMatch(/waiting for capacity on \S+: place 3 in line[^]*place 1 in line/);
    await noSlotHeld();
  });

  test('a failed job releases its slot; a sandbox larger than the host fails at once', async () => {
    await startBareSandbox('adm-hold-3');
    await stack.waitForState('adm-hold-3', (d) => d.state === 'RUNNING', 'RUNNING');
    await startJob('adm-fails', agent(1, 3));
    await stack.waitForState('adm-fails', (d) => d.state !== 'REQUESTED', 'admitted');
    await startJob('adm-after-failure', agent(0));
    const [failed, after] = (await finalDescriptions(['adm-fails', 'adm-after-failure'])) as [
      JobDescription,
      JobDescription,
    ];
    expect(failed).toMatchObject({ jobStatus: 'FAILED', state: 'DESTROYED', exitCode: 3 });
    expect(after).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    expect(provisioningStart(after)).toBeGreaterThan(destroyedAt(failed));

    await startJob('adm-huge', agent(0), 'local-huge');
    const huge = await finalDescription('adm-huge');
    expect(huge.jobStatus).toBe('FAILED');
    expect(huge.message).toMatch(/needs 8 cores .* more than node \S+ admits at once \(4 cores/);

    expect((await stack.cli(['sandbox', 'destroy', 'adm-hold-3', '--yes'])).code).toBe(0);
    await noSlotHeld();
  });

  test('worker SIGKILL and restart with jobs in line: all complete, no slot leaked', async () => {
    const ids = ['adm-k1', 'adm-k2', 'adm-k3', 'adm-k4'];
    await Promise.all(ids.map((id) => startJob(id, agent(2))));
    await eventually('two jobs in line', async () => (await line()).waiting.length === 2);
    await stack.killWorkers('SIGKILL');
    await stack.startWorker();
    const done = await finalDescriptions(ids);
    for (const d of done) expect(d).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    expect(maxHeldAtOnce(done)).toBeLessThanOrEqual(2);
    await noSlotHeld();
    // The line has been handed over to fresh runs (continue-as-new) on the way, and nothing was lost.
    const handedOver = [];
    for await (const run of stack.client.workflow.list({ query: `WorkflowId = "${admissionWorkflowId(stack.node)}"` }))
      if (run.status.name === 'CONTINUED_AS_NEW') handedOver.push(run.runId);
    expect(handedOver.length).toBeGreaterThan(0);
    await recordHistoryIfAsked('admission-handed-over', admissionWorkflowId(stack.node), handedOver[0]);
  });

  test('the slot of a workflow that ended without releasing it is reclaimed', async () => {
    await startBareSandbox('adm-gone-1');
    await startBareSandbox('adm-gone-2');
    await stack.waitForState('adm-gone-2', (d) => d.state === 'RUNNING', 'RUNNING');
    await startJob('adm-waits', agent(0));
    await eventually('adm-waits in line', async () => (await waitingIds()).includes('adm-waits'));
    // Terminated: no finally runs, so no release (its VM is the reconcile Schedule's orphan to destroy).
    await stack.client.workflow.getHandle('adm-gone-1').terminate('test: a workflow that never releases');
    const waited = await finalDescription('adm-waits');
    expect(waited).toMatchObject({ jobStatus: 'COMPLETED', state: 'DESTROYED' });
    expect((await stack.cli(['sandbox', 'destroy', 'adm-gone-2', '--yes'])).code).toBe(0);
    await noSlotHeld();
    expect((await stack.cli(['sandbox', 'reconcile'])).code).toBe(0); // the terminated one's orphan
  });
});

function provisioningStart(d: JobDescription): number {
  return d.timeline.find((t) => t.state === 'PROVISIONING')!.at;
}

function destroyedAt(d: JobDescription): number {
  return d.timeline.find((t) => t.state === 'DESTROYED')!.at;
}

/** The most sandboxes that existed at the same time: from first provisioning to destroyed, per job. */
function maxHeldAtOnce(jobs: JobDescription[]): number {
  const edges = jobs.flatMap((d) => [
    { at: provisioningStart(d), delta: 1 },
    { at: destroyedAt(d), delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta); // at a tie, a release counts first
  let held = 0;
  let most = 0;
  for (const edge of edges) {
    held += edge.delta;
    most = Math.max(most, held);
  }
  return most;
}
