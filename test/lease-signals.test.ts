// Renew and destroy as Signals, sent with Temporal's own CLI as an operator would: the same rules as the Updates,
// and a Signal the rules refuse leaves a timeline entry with the reason instead of vanishing.
import execa from 'execa';
import { jobDocumentSchema } from '../cli/json-schemas';
import { destroyUpdate } from '../common/contract';
import { temporalCliPath } from '../common/temporal-server';
import { activityFailed, recordHistoryIfAsked } from './support/histories';
import { TestStack, eventually, liveSandboxes, setFaults, temporalAddress } from './support/stack';

/** `temporal workflow signal --workflow-id <job> --name <name> --input '<json>'`, the command the docs show. */
async function signal(jobId: string, name: string, input: string): Promise<void> {
  await execa(temporalCliPath(), [
    ...['workflow', 'signal', '--address', temporalAddress(), '--workflow-id', jobId],
    ...['--name', name, '--input', input],
  ]);
}

const HOUR = 3_600_000;

describe('renewLease and destroy Signals', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
  });
  afterEach(() => setFaults(stack, {}));
  afterAll(() => stack.close());

  const newSandbox = async (id: string, ttl: string) => {
    const created = await stack.cli(['sandbox', 'new', '--id', id, '--ttl', ttl, '--json']);
    expect(created.code).toBe(0);
    return stack.describe(id);
  };
  /** The timeline entries recording refused Signals. */
  const refusals = async (id: string) => (await stack.describe(id)).timeline.filter((t) => t.signal);

  test('renewLease as a Signal extends a RUNNING lease; the Update of the same name still answers the CLI', async () => {
    const before = await newSandbox('sig-renew', '10m');
    expect(before.state).toBe('RUNNING');
    const sent = Date.now();
    await signal('sig-renew', 'renewLease', '{"ttl":"2h"}');
    const renewed = await stack.waitForState(
      'sig-renew',
      (d) => d.leaseExpiresAt! > before.leaseExpiresAt! + HOUR,
      'the lease renewed by the Signal',
    );
    expect(renewed.leaseExpiresAt).toBeGreaterThanOrEqual(sent + 2 * HOUR - 5000);
    expect(renewed.leaseExpiresAt).toBeLessThanOrEqual(Date.now() + 2 * HOUR);
    expect(await refusals('sig-renew')).toEqual([]);

    // Signals and Updates are separate handler sets: `renewLease` names both.
    const update = await stack.cli(['sandbox', 'lease', 'renew', 'sig-renew', '--ttl', '30m', '--json']);
    expect(update.code).toBe(0);
    expect(Date.parse(JSON.parse(update.stdout).leaseExpiresAt)).toBeLessThan(Date.now() + HOUR);
    await recordHistoryIfAsked('sbx-signals-renewed', 'sig-renew');
    // Not left running: its guest runner would outlive the stack (and its directory) by the lease's 30 minutes.
    await stack.client.workflow.getHandle('sig-renew').executeUpdate(destroyUpdate, { args: [{ force: false }] });
    await stack.waitForClose('sig-renew');
    expect(liveSandboxes(stack)).not.toContain(before.vmid);
  });

  test('a refused renewLease Signal changes nothing and leaves a timeline entry with the reason', async () => {
    const running = await newSandbox('sig-refused', '10m');
    await signal('sig-refused', 'renewLease', '{"ttl":"25h"}');
    await signal('sig-refused', 'renewLease', '{"ttl":"soon"}');
    expect((await stack.cli(['sandbox', 'stop', 'sig-refused'])).code).toBe(0);
    await signal('sig-refused', 'renewLease', '{"ttl":"2h"}');

    const entries = await eventually('three refusals in the timeline', async () => {
      const found = await refusals('sig-refused');
      return found.length === 3 ? found : undefined;
    });
    expect(entries.map((e) => [e.signal, e.state, e.note])).toEqual([
      ['renewLease', 'RUNNING', 'renewLease signal refused: ttl 25h is above the maximum 24h of profile local'],
      [
        'renewLease',
        'RUNNING',
        'renewLease signal refused: ttl: expected {"ttl": "<duration>"}, e.g. {"ttl": "2h"} (90s, 15m, 3h, 1h30m), got "soon"',
      ],
      [
        'renewLease',
        'STOPPED',
        'renewLease signal refused: cannot renew sandbox in state STOPPED: renew is allowed only in RUNNING',
      ],
    ]);
    const after = await stack.describe('sig-refused');
    expect(after).toMatchObject({ state: 'STOPPED', leaseExpiresAt: running.leaseExpiresAt });

    // `sandbox show` shows them, as a table and as JSON.
    const shown = await stack.cli(['sandbox', 'show', 'sig-refused']);
    expect(shown.stdout).toContain('cannot renew sandbox in state STOPPED: renew is allowed only in RUNNING');
    // `sandbox show --json` shares `job show`'s timeline entries.
    const json = JSON.parse((await stack.cli(['sandbox', 'show', 'sig-refused', '--json'])).stdout);
    const timeline = jobDocumentSchema.shape.timeline.parse(json.timeline);
    expect(timeline.filter((t) => t.signal === 'renewLease')).toHaveLength(3);

    // Destroy by Signal is allowed from STOPPED.
    await signal('sig-refused', 'destroy', '{"force":false,"reason":"done with it"}');
    await stack.waitForClose('sig-refused');
    expect(await stack.describe('sig-refused')).toMatchObject({
      state: 'DESTROYED',
      message: 'sandbox destroyed by operator: done with it', // the Signal's reason
    });
    await recordHistoryIfAsked('sbx-signals-refused', 'sig-refused');
  });

  test('a destroy Signal without force is refused in TIMEOUT (timeline entry), and with force destroys', async () => {
    setFaults(stack, { failDestroy: true });
    const sandbox = await newSandbox('sig-destroy', '4s');
    await stack.waitForState('sig-destroy', (d) => d.state === 'TIMEOUT', 'TIMEOUT');
    await activityFailed(stack.client, 'sig-destroy', 'destroyVm'); // teardown gave up (2 attempts) and waits

    await signal('sig-destroy', 'destroy', '{"force":false,"reason":"clean up"}');
    await signal('sig-destroy', 'destroy', '{"force":"yes"}');
    const entries = await eventually('two refusals', async () => {
      const found = await refusals('sig-destroy');
      return found.length === 2 ? found : undefined;
    });
    expect(entries.map((e) => e.note)).toEqual([
      'destroy signal refused: cannot destroy sandbox in state TIMEOUT: destroy is allowed only in READY, RUNNING, STOPPED; use --force to override',
      'destroy signal refused: force: expected true or false, got "yes"',
    ]);
    expect(liveSandboxes(stack)).toContain(sandbox.vmid);

    setFaults(stack, {});
    await signal('sig-destroy', 'destroy', '{"force":true,"reason":"clean up"}');
    await stack.waitForClose('sig-destroy');
    expect((await stack.describe('sig-destroy')).state).toBe('DESTROYED');
    expect(liveSandboxes(stack)).not.toContain(sandbox.vmid);
  });
});
