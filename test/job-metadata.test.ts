// The Web UI as the job console: what Temporal holds as user metadata for a job, read back with the client
// (the same fields the UI renders): the fixed summary and details, the current details, and the summaries
// of activities and timers in the history.
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import execa from 'execa';
import { createExampleRepo } from '../common/example-repo';
import type { ResolvedProfile } from '../common/contract';
import { utcMinute } from '../common/job-metadata';
import { temporalCliPath } from '../common/temporal-server';
import { activitySummary } from '../workflows/activity-summaries';
import { recordHistoryIfAsked } from './support/histories';
import { SCRIPTED_AGENT, TestStack, eventually, temporalAddress } from './support/stack';

interface WorkflowMetadata {
  currentDetails?: string;
  definition?: { signalDefinitions?: { name: string; description?: string }[] };
}

describe('job user metadata (Web UI console)', () => {
  let stack: TestStack;
  let repo: string;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  const handle = (id: string) => stack.client.workflow.getHandle(id);
  const metadata = (id: string) => handle(id).query<WorkflowMetadata>('__temporal_workflow_metadata');
  /** Every event's summary, in history order (activities and timers carry one). */
  const summaries = async (id: string): Promise<string[]> => {
    const history = await handle(id).fetchHistory();
    return (history.events ?? [])
      .map((e) => e.userMetadata?.summary)
      .filter((p): p is Payload => !!p)
      .map((p) => defaultPayloadConverter.fromPayload<string>(p));
  };

  test('a job carries its summary and details, current details that follow it, and activity summaries', async () => {
    const run = await stack.cli([
      ...['job', 'run', '--id', 'meta-job', '--repo', repo, '--ref', 'main', '--json'],
      ...['--task', 'fix the flaky test\nand explain why it flaked', '--agent-command', SCRIPTED_AGENT],
    ]);
    expect(run.code).toBe(0);

    const described = await handle('meta-job').describe();
    expect(await described.staticSummary()).toBe(`fix the flaky test · ${repo}@main · profile local`);
    const details = await described.staticDetails();
    expect(details).toContain(`- repo: ${repo}\n- ref: main (commit `);
    expect(details).toContain('- task: fix the flaky test\n- profile: local');

    const { vmid } = await stack.describe('meta-job');
    const current = (await metadata('meta-job')).currentDetails!;
    expect(current).toMatch(
      new RegExp(`^- state: \\*\\*DESTROYED\\*\\*, job COMPLETED\\n- VMID: ${vmid} on \\S+, address `),
    );
    expect(current).toMatch(/\n- outcome: COMPLETED, exit 0: /);

    const all = await summaries('meta-job');
    expect(all).toEqual(
      expect.arrayContaining([
        'resolve profile local',
        'allocate a VMID (local, attempt 1)',
        `create local sandbox ${vmid}`,
        `configure VM ${vmid}: bootstrap token and cloud-init`,
        `start VM ${vmid}`,
        expect.stringMatching(new RegExp(`^wait up to \\w+ for VM ${vmid}'s address$`)), // the test profile's
        `snapshot VM ${vmid} as clean`,
        `delete VM ${vmid}'s bootstrap snippet`,
        `watch the guest runner: fail the job after 3m unheard`,
        `destroy VM ${vmid}`,
      ]),
    );
    expect(all.some((s) => /^lease until (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC$/.test(s))).toBe(true);
    // The claim wait is a timer only when the guest has not claimed yet (it may claim while provisioning,
    // and does on a busy machine): then it says what it waits for.
    const claimWaits = all.filter((s) => s.startsWith('the guest claims'));
    for (const wait of claimWaits) expect(wait).toMatch(/^the guest claims its bootstrap within \w+$/);
    await recordHistoryIfAsked('job-console-metadata', 'meta-job');
  });

  test("a sandbox's current details show its VM, address and lease, and follow a renew and a refused signal", async () => {
    expect((await stack.cli(['sandbox', 'new', '--id', 'meta-sbx', '--ttl', '10m'])).code).toBe(0);
    expect(await (await handle('meta-sbx').describe()).staticSummary()).toBe('sandbox without a job · profile local');
    const sandbox = await stack.describe('meta-sbx');
    const leaseLine = (ms: number) => `- lease until ${utcMinute(ms, Date.now())}`;
    const before = (await metadata('meta-sbx')).currentDetails!;
    expect(before.split('\n').slice(0, 2)).toEqual([
      '- state: **RUNNING**',
      `- VMID: ${sandbox.vmid} on ${sandbox.node}, address ${sandbox.address}`,
    ]);
    expect(before).toContain(leaseLine(sandbox.leaseExpiresAt!));

    // The Send a Signal dialog lists the operator Signals with what to type.
    const signals = (await metadata('meta-sbx')).definition!.signalDefinitions!;
    expect(signals.find((s) => s.name === 'renewLease')?.description).toContain('{"ttl": "2h"}');

    const signal = (name: string, input: string) =>
      execa(temporalCliPath(), [
        ...['workflow', 'signal', '--address', temporalAddress(), '--workflow-id', 'meta-sbx'],
        ...['--name', name, '--input', input],
      ]);
    await signal('renewLease', '{"ttl":"3h"}');
    await signal('renewLease', '{"ttl":"48h"}');
    const after = await eventually('the refusal in the current details', async () => {
      const text = (await metadata('meta-sbx')).currentDetails!;
      return text.includes('last refused signal') ? text : undefined;
    });
    const renewed = await stack.describe('meta-sbx');
    expect(renewed.leaseExpiresAt).toBeGreaterThan(sandbox.leaseExpiresAt!);
    expect(after).toContain(leaseLine(renewed.leaseExpiresAt!));
    expect(after).toMatch(/- last refused signal \(.+\): renewLease signal refused: ttl 48h is above the maximum/);
    // The lease watcher's timer, restarted for the new expiry, says until when.
    expect(await summaries('meta-sbx')).toContain(`lease until ${utcMinute(renewed.leaseExpiresAt!, Date.now())}`);

    expect((await stack.cli(['sandbox', 'destroy', 'meta-sbx', '--yes'])).code).toBe(0);
    await stack.waitForClose('meta-sbx');
    expect((await metadata('meta-sbx')).currentDetails).toMatch(/^- state: \*\*DESTROYED\*\*\n- VMID: /);
  });
});

describe('summary texts', () => {
  test('a Proxmox clone names its template; a local sandbox has none', () => {
    const owner = { jobId: 'j', workflowId: 'j' };
    const proxmox = { backend: 'proxmox', templateVmid: 9000 } as ResolvedProfile;
    expect(activitySummary('cloneVm', { vmid: 7003, profile: proxmox, owner })).toBe(
      'clone VM 7003 from template 9000',
    );
    const local = { backend: 'local' } as ResolvedProfile;
    expect(activitySummary('cloneVm', { vmid: 7003, profile: local, owner })).toBe('create local sandbox 7003');
  });

  test("a Proxmox configure names the boot disk's size when the profile sets one; the local backend has none", () => {
    const configure = (profile: Partial<ResolvedProfile>) =>
      activitySummary('configureVm', { vmid: 7003, profile: profile as ResolvedProfile, jobId: 'j' });
    expect(configure({ backend: 'proxmox', diskGb: 32 })).toBe(
      'configure VM 7003: boot disk to 32G, bootstrap token and cloud-init',
    );
    expect(configure({ backend: 'proxmox' })).toBe('configure VM 7003: bootstrap token and cloud-init');
    expect(configure({ backend: 'local', diskGb: 32 })).toBe('configure VM 7003: bootstrap token and cloud-init');
  });

  test('times are UTC minutes, with the date once they are not today', () => {
    const now = Date.parse('2026-11-29T13:00:00Z');
    expect(utcMinute(Date.parse('2026-11-29T14:05:30Z'), now)).toBe('14:05 UTC');
    expect(utcMinute(Date.parse('2026-11-30T00:10:00Z'), now)).toBe('2026-11-30 00:10 UTC');
  });
});
