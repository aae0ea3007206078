// Orphans: a VM of ours whose workflow ended without its teardown (here: terminated by an operator) is
// destroyed by `agentlab sandbox reconcile` and by the host's Schedule; live sandboxes and VMs that are
// not ours are never touched.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reconcileScheduleId, type ReconcileReport } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { eventually, freePort, journal, liveSandboxes, TestStack } from './support/stack';

async function sandboxRunning(stack: TestStack, id: string): Promise<number> {
  const created = await stack.cli(['sandbox', 'new', '--id', id, '--json']);
  expect(created.code).toBe(0);
  return (await stack.waitForState(id, (d) => d.state === 'RUNNING', 'RUNNING')).vmid!;
}

/** What an operator's `temporal workflow terminate` does: the workflow ends, its teardown never runs. */
async function orphan(stack: TestStack, id: string): Promise<number> {
  const vmid = await sandboxRunning(stack, id);
  await stack.client.workflow.getHandle(id).terminate('test: terminated by an operator');
  expect(liveSandboxes(stack)).toContain(vmid);
  return vmid;
}

describe('agentlab sandbox reconcile', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  test('destroys the orphan, keeps the live sandbox, never sees a VM that is not ours', async () => {
    const orphanVmid = await orphan(stack, 'reconcile-orphan');
    const liveVmid = await sandboxRunning(stack, 'reconcile-live');
    // A sandbox directory without our owner mark (someone else's VM in our range).
    const foreign = join(stack.dataDir, 'sandboxes', '7999');
    mkdirSync(foreign, { recursive: true });
    writeFileSync(join(foreign, 'disk.img'), 'not ours');

    const result = await stack.cli(['sandbox', 'reconcile', '--json']);
    expect(result.code).toBe(0);
    const { reports } = JSON.parse(result.stdout) as { reports: ReconcileReport[] };
    expect(reports).toEqual([
      { node: stack.node, backend: 'local', checked: 2, destroyed: [orphanVmid], kept: [liveVmid], failed: [] },
    ]);
    expect(liveSandboxes(stack)).not.toContain(orphanVmid);
    expect(journal(stack, 'reconcile-orphan').map((e) => e.op)).toEqual(['clone', 'destroy']);
    expect((await stack.describe('reconcile-live')).state).toBe('RUNNING');
    expect(existsSync(join(foreign, 'disk.img'))).toBe(true);

    // A second pass finds nothing to do.
    const again = JSON.parse((await stack.cli(['sandbox', 'reconcile', '--json'])).stdout) as {
      reports: ReconcileReport[];
    };
    expect(again.reports[0]).toMatchObject({ checked: 1, destroyed: [], kept: [liveVmid] });
    expect((await stack.cli(['sandbox', 'destroy', 'reconcile-live', '--yes'])).code).toBe(0);
  });
});

describe('the reconcile Schedule', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await new TestStack({ reconcileInterval: '2s' }).init();
    await stack.startWorker();
  });
  afterAll(async () => {
    await stack.client.schedule
      .getHandle(reconcileScheduleId(stack.node))
      .delete()
      .catch(() => undefined);
    await stack.close();
  });

  test("each worker keeps its host's Schedule; an orphan goes within a few intervals, unasked", async () => {
    const schedule = await stack.client.schedule.getHandle(reconcileScheduleId(stack.node)).describe();
    expect(schedule.spec.intervals?.[0]?.every).toBe(2000);
    expect(schedule.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcileWorkflow' });

    const vmid = await orphan(stack, 'scheduled-orphan');
    // The backend journals a destroy just after it removed the directory: wait for both, not the first.
    const destroyed = () =>
      !liveSandboxes(stack).includes(vmid) && journal(stack, 'scheduled-orphan').some((e) => e.op === 'destroy');
    await eventually('the Schedule to destroy the orphan', async () => destroyed(), 30_000);
    expect(journal(stack, 'scheduled-orphan').map((e) => e.op)).toEqual(['clone', 'destroy']);
  });
});

describe('reconcile after a payload codec key rotation', () => {
  let stack: TestStack;
  let keyFile = '';
  beforeAll(async () => {
    keyFile = join(mkdtempSync(join(tmpdir(), 'agentlab-rotate-')), 'codec.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    stack = await new TestStack({
      temporal: { codec: { keyFile, endpointListen: `127.0.0.1:${await freePort()}` } },
    }).init();
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  test('a workflow sealed with the old key is still judged: its orphan goes, nothing else fails', async () => {
    // A job, not a bare sandbox: only jobs carry a memo (repo, task), and it is sealed with the key.
    const repo = await createExampleRepo(stack.home);
    const { vmid } = await stack.startSleepingJob('rotated-orphan', repo);
    await stack.client.workflow.getHandle('rotated-orphan').terminate('test: terminated by an operator');
    await stack.killWorkers('SIGTERM');
    writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    await stack.startWorker();

    const result = await stack.cli(['sandbox', 'reconcile', '--json']);
    expect(result.code).toBe(0);
    const { reports } = JSON.parse(result.stdout) as { reports: ReconcileReport[] };
    expect(reports[0]).toMatchObject({ checked: 1, destroyed: [vmid], failed: [] });
    expect(liveSandboxes(stack)).not.toContain(vmid);
  });
});
