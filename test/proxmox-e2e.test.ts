// A job end to end through the CLI, a worker with the Proxmox backend, the simulator and the real guest runner.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../common/config';
import { createExampleRepo } from '../common/example-repo';
import { workflowWebUiUrl } from '../common/web-ui';
import { serveRepo, type GitDaemon } from './support/git-daemon';
import { FOREIGN_VMID, leftoverSnippets, leftoverVms, startPveStack, type PveStack } from './support/pve-stack';
import { SCRIPTED_AGENT } from './support/stack';

let pve: PveStack;
let repo: GitDaemon;

beforeAll(async () => {
  pve = await startPveStack({
    sim: { latency: { bootMs: 300 } },
    extraProfiles: [
      { name: 'pve-missing-template', backend: 'proxmox', templateVmid: 9999 },
      // The simulator's template 9000 has an 8G scsi0.
      { name: 'pve-disk-20g', backend: 'proxmox', templateVmid: 9000, resources: { diskGb: 20 } },
      { name: 'pve-disk-4g', backend: 'proxmox', templateVmid: 9000, resources: { diskGb: 4 } },
    ],
  });
  repo = await serveRepo(await createExampleRepo(pve.stack.home));
});
afterAll(async () => {
  await repo?.close();
  await pve?.close();
});

const run = (id: string, profile = 'yolo-ephemeral', extra: string[] = []) =>
  pve.stack.cli([
    'job',
    'run',
    ...extra,
    '--profile',
    profile,
    '--repo',
    repo.url,
    '--task',
    `task of ${id}`,
    '--agent-command',
    SCRIPTED_AGENT,
    '--id',
    id,
    '--json',
  ]);

function expectNothingLeft(): void {
  expect(leftoverVms(pve.sim)).toEqual([]);
  expect(leftoverSnippets(pve.snippetsDir)).toEqual([]);
  expect(pve.sim.guests!.running()).toEqual([]);
  const foreign = pve.sim.vm(FOREIGN_VMID)!;
  expect(foreign.status).toBe('running');
  expect(foreign.config).toEqual({
    name: `foreign-${FOREIGN_VMID}`,
    cores: 1,
    memory: '1024',
    description: 'somebody else',
  });
}

test('a yolo-ephemeral job runs the real guest runner in a simulated VM and leaves nothing behind', async () => {
  const result = await run('job-pve-e2e');
  expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('"status": "COMPLETED"') });
  const doc = JSON.parse(result.stdout);
  expect(doc).toMatchObject({
    jobId: 'job-pve-e2e',
    status: 'COMPLETED',
    exitCode: 0,
    sandbox: { state: 'DESTROYED' },
  });
  expect(doc.sandbox.vmid).toBeGreaterThanOrEqual(7000);
  expect(doc.timeline.map((t: { state: string }) => t.state)).toEqual([
    'REQUESTED',
    'PROVISIONING',
    'BOOTING',
    'READY',
    'RUNNING',
    'DESTROYED',
  ]);
  // The guest agent's address came through the backend (the guest is a host process, on 127/8).
  expect((await pve.stack.describe('job-pve-e2e')).address).toMatch(/^127\.77\.\d+\.\d+$/);
  const jobDir = join(pve.stack.dataDir, 'jobs', 'job-pve-e2e');
  expect(readFileSync(join(jobDir, 'agent.log'), 'utf8')).toContain('task of job-pve-e2e');
  expect(readFileSync(join(jobDir, 'artifacts', 'changes.patch'), 'utf8')).toContain('NOTES.md');
  expectNothingLeft();
});

test('a clone that finds its VMID taken is not retried: provisioning allocates a new VMID at once', async () => {
  pve.sim.state.faults.stealCloneTargets = 1;
  const started = Date.now();
  const result = await run('job-pve-conflict');
  expect(result.code).toBe(0);
  const doc = JSON.parse(result.stdout);
  expect(doc).toMatchObject({ status: 'COMPLETED', sandbox: { state: 'DESTROYED' } });
  expect(JSON.stringify(doc.timeline)).toContain('attempt 2 of 3');

  const history = await pve.stack.client.workflow.getHandle('job-pve-conflict').fetchHistory();
  const scheduled = new Map<string, string>();
  const cloneAttempts: number[] = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(event.eventId), s.activityType?.name ?? '');
    const st = event.activityTaskStartedEventAttributes;
    if (st && scheduled.get(String(st.scheduledEventId)) === 'cloneVm') cloneAttempts.push(st.attempt ?? 0);
  }
  // One failed clone of the stolen VMID (first attempt only, no activity retries), then one good clone.
  expect(cloneAttempts).toEqual([1, 1]);
  expect(Date.now() - started).toBeLessThan(30_000);
  // The VM that took the VMID is somebody else's: it stays. Nothing of ours does.
  const stolen = leftoverVms(pve.sim);
  expect(stolen).toHaveLength(1);
  expect(pve.sim.vm(stolen[0]!)?.config.name).toBe(`stolen-${stolen[0]}`);
  pve.sim.state.vms.delete(stolen[0]!);
  expectNothingLeft();
});

test('a missing template fails the job fast with the Proxmox text, and nothing is left behind', async () => {
  const started = Date.now();
  const result = await run('job-pve-no-template', 'pve-missing-template');
  expect(result.code).toBe(1);
  const doc = JSON.parse(result.stdout);
  expect(doc).toMatchObject({ status: 'FAILED', sandbox: { state: expect.stringMatching(/FAILED|DESTROYED/) } });
  expect(doc.message).toContain(
    `template VM 9999 is missing: Configuration file 'nodes/${pve.sim.node}/qemu-server/9999.conf' does not exist`,
  );
  expect(Date.now() - started).toBeLessThan(20_000);
  expectNothingLeft();
});

test("a profile's diskGb grows the VM's boot disk; the VM's name and description name the job and its Web UI page", async () => {
  const result = await run('job-pve-disk', 'pve-disk-20g', ['--keepalive']);
  expect(result.code).toBe(0);
  const doc = JSON.parse(result.stdout);
  expect(doc).toMatchObject({ status: 'COMPLETED', sandbox: { state: expect.stringMatching(/READY|RUNNING/) } });
  const config = pve.sim.vm(doc.sandbox.vmid)!.config;
  expect(String(config.scsi0)).toMatch(/,size=20G$/);
  expect(config.name).toBe('agentlab-job-pve-disk');
  const temporal = loadConfig({ ...process.env, AGENTLAB_CONFIG: pve.stack.configPath }).temporal;
  expect(String(config.description)).toContain(
    [
      'job: job-pve-disk',
      'profile: pve-disk-20g',
      `repo: ${repo.url}`,
      `Temporal Web UI: ${workflowWebUiUrl(temporal, 'job-pve-disk')}`,
    ].join('\n'),
  );
  expect((await pve.stack.cli(['sandbox', 'destroy', 'job-pve-disk', '--yes'])).code).toBe(0);
  await pve.stack.waitForClose('job-pve-disk');
  expectNothingLeft();
});

test("a diskGb below the template's disk fails the job with Proxmox's refusal, and its VM is destroyed", async () => {
  const result = await run('job-pve-small-disk', 'pve-disk-4g');
  expect(result.code).toBe(1);
  const doc = JSON.parse(result.stdout);
  expect(doc).toMatchObject({ status: 'FAILED', sandbox: { state: expect.stringMatching(/FAILED|DESTROYED/) } });
  expect(doc.message).toContain(
    "profile pve-disk-4g asks for a 4G root disk, but template 9000's boot disk (scsi0) is 8G: " +
      'Proxmox refused to resize it: shrinking disks is not supported',
  );
  // Refused for good: one clone, no provisioning retry.
  expect(
    pve.sim.state.ledger.filter((e) => e.op === 'clone' && e.description?.includes('job-pve-small-disk')),
  ).toHaveLength(1);
  expectNothingLeft();
});
