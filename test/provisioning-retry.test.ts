// A VM that never becomes ready is destroyed and provisioning retried; permanent errors fail at once.
import { createExampleRepo } from '../common/example-repo';
import { SCRIPTED_AGENT, TestStack, journal, liveSandboxes, setFaults } from './support/stack';

describe('provisioning retries', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack({
      profiles: [
        {
          name: 'local-retry',
          backend: 'local',
          provisioning: { attempts: 3, bootTimeout: '2s', bootstrapTimeout: '60s' },
        },
        { name: 'proxmox-only', backend: 'proxmox', templateVmid: 9000 },
      ],
    }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  test('a guest that never becomes ready: each attempt is compensated, then FAILED with the reason', async () => {
    setFaults(stack, { neverReady: true });
    const result = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'never runs',
      '--profile',
      'local-retry',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-never-ready',
      '--json',
    ]);
    setFaults(stack, {});
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout);
    expect(doc.status).toBe('FAILED');
    expect(doc.message).toMatch(
      /provisioning failed after 3 attempt\(s\): guest of sandbox \d+ did not report an address within 2s/,
    );
    expect(doc.sandbox.state).toBe('DESTROYED');
    const entries = journal(stack, 'job-never-ready');
    expect(entries.filter((e) => e.op === 'clone')).toHaveLength(3);
    expect(entries.filter((e) => e.op === 'destroy')).toHaveLength(3);
    const provisioningNotes = doc.timeline.filter((t: { state: string }) => t.state === 'PROVISIONING');
    expect(provisioningNotes).toHaveLength(3);
    expect(liveSandboxes(stack)).toEqual([]);
  });

  test('a permanent error (backend not available here) fails at once with a clear message', async () => {
    const started = Date.now();
    const result = await stack.cli([
      'job',
      'run',
      '--repo',
      'https://git.example.invalid/acme/app.git',
      '--task',
      'x',
      '--profile',
      'proxmox-only',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-permanent',
      '--json',
    ]);
    expect(result.code).toBe(1);
    const doc = JSON.parse(result.stdout);
    expect(doc.status).toBe('FAILED');
    expect(doc.message).toContain('backend "proxmox" is not enabled on worker node');
    expect(doc.sandbox.vmid).toBeNull();
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(journal(stack, 'job-permanent')).toEqual([]);
  });
});
