// User snapshots: `sandbox snapshot save | list | restore` through the CLI, the workflow and the local backend.
// STOPPED, or --force on a live sandbox; bad requests are refused and change nothing; restore brings back
// exactly the disk that was saved; a job running under a forced restore ends FAILED with the reason.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotUpdate } from '../common/contract';
import { createExampleRepo } from '../common/example-repo';
import { recordHistoryIfAsked } from './support/histories';
import { journal, TestStack } from './support/stack';

describe('sandbox snapshot save | list | restore', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  const notes = (vmid: number) => join(stack.dataDir, 'sandboxes', String(vmid), 'work', 'notes.txt');
  const listed = async (id: string) =>
    (
      JSON.parse((await stack.cli(['sandbox', 'snapshot', 'list', id, '--json'])).stdout) as {
        snapshots: { name: string; state: string; at: string }[];
      }
    ).snapshots;

  test('save and restore on a bare sandbox; refusals change nothing', async () => {
    expect((await stack.cli(['sandbox', 'new', '--id', 'snap-bare'])).code).toBe(0);
    const { vmid } = await stack.waitForState('snap-bare', (d) => d.state === 'RUNNING', 'RUNNING');

    // Live without --force, a bad name, the reserved ones: refused with the reason, nothing saved.
    const live = await stack.cli(['sandbox', 'snapshot', 'save', 'snap-bare', 's1']);
    expect(live.code).toBe(1);
    expect(live.stderr).toContain(
      'cannot snapshot sandbox in state RUNNING: snapshot is allowed only in STOPPED; use --force to override',
    );
    expect((await stack.cli(['sandbox', 'stop', 'snap-bare'])).code).toBe(0);
    // Names Proxmox or agentlab would refuse are usage errors at the door (exit 2), before Temporal is asked.
    for (const [name, reason] of [
      ['a', 'expected a letter, then letters, digits, "_" or "-" (2 to 40 characters)'],
      ['9lives', 'expected a letter, then letters, digits, "_" or "-"'],
      ['../x', 'expected a letter'],
      ['pending', 'is reserved by Proxmox'],
      ['Pending', 'is reserved by Proxmox'],
      ['current', 'is reserved by Proxmox'],
      ['clean', 'is reserved (revert rolls back to it)'],
    ]) {
      const refused = await stack.cli(['sandbox', 'snapshot', 'save', 'snap-bare', name!]);
      expect({ name, code: refused.code, reason: refused.stderr.includes(reason!) }).toEqual({
        name,
        code: 2,
        reason: true,
      });
    }
    // A client that skips the CLI meets the same rule in the workflow's validator.
    const direct = stack.client.workflow
      .getHandle('snap-bare')
      .executeUpdate(snapshotUpdate, { args: [{ name: 'a', force: false }] });
    await expect(direct).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/^snapshot name "a": expected/) },
    });
    expect(await listed('snap-bare')).toEqual([]);

    writeFileSync(notes(vmid!), 'v1\n');
    const saved = await stack.cli(['sandbox', 'snapshot', 'save', 'snap-bare', 's1', '--json']);
    expect(saved.code).toBe(0);
    expect(JSON.parse(saved.stdout)).toMatchObject({ jobId: 'snap-bare', snapshot: { name: 's1', state: 'STOPPED' } });
    const again = await stack.cli(['sandbox', 'snapshot', 'save', 'snap-bare', 's1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('snapshot s1 exists already');

    // A live one with --force.
    expect((await stack.cli(['sandbox', 'start', 'snap-bare'])).code).toBe(0);
    writeFileSync(notes(vmid!), 'v2\n');
    expect((await stack.cli(['sandbox', 'snapshot', 'save', 'snap-bare', 's2', '--force'])).code).toBe(0);
    writeFileSync(notes(vmid!), 'v3\n');

    const timelineBefore = (await stack.describe('snap-bare')).timeline.length;
    const refusedRestore = await stack.cli(['sandbox', 'snapshot', 'restore', 'snap-bare', 's1', '--yes']);
    expect(refusedRestore.code).toBe(1);
    expect(refusedRestore.stderr).toContain('cannot restore sandbox in state RUNNING');
    const missing = await stack.cli(['sandbox', 'snapshot', 'restore', 'snap-bare', 'nope', '--force', '--yes']);
    expect(missing.stderr).toContain('sandbox has no snapshot nope (saved: s1, s2)');
    const unconfirmed = await stack.cli(['sandbox', 'snapshot', 'restore', 'snap-bare', 's1', '--force']);
    expect(unconfirmed.code).toBe(2);
    expect(readFileSync(notes(vmid!), 'utf8')).toBe('v3\n');
    expect(await stack.describe('snap-bare')).toMatchObject({ state: 'RUNNING' });
    expect((await stack.describe('snap-bare')).timeline).toHaveLength(timelineBefore);

    const restored = await stack.cli([
      'sandbox',
      'snapshot',
      'restore',
      'snap-bare',
      's1',
      '--force',
      '--yes',
      '--json',
    ]);
    expect(JSON.parse(restored.stdout)).toEqual({
      jobId: 'snap-bare',
      state: 'STOPPED',
      snapshot: 's1',
      restarted: false,
    });
    expect(readFileSync(notes(vmid!), 'utf8')).toBe('v1\n');
    expect((await stack.describe('snap-bare')).timeline.at(-1)).toMatchObject({
      state: 'STOPPED',
      note: 'restored snapshot s1',
    });

    expect((await stack.cli(['sandbox', 'snapshot', 'restore', 'snap-bare', 's2', '--restart', '--yes'])).code).toBe(0);
    expect(readFileSync(notes(vmid!), 'utf8')).toBe('v2\n');
    expect((await stack.describe('snap-bare')).state).toBe('RUNNING');
    expect((await listed('snap-bare')).map((s) => [s.name, s.state])).toEqual([
      ['s1', 'STOPPED'],
      ['s2', 'RUNNING'],
    ]);
    expect((await stack.cli(['sandbox', 'show', 'snap-bare'])).stdout).toMatch(/Snapshots:\s+s1, s2\n/);

    expect((await stack.cli(['sandbox', 'destroy', 'snap-bare', '--yes'])).code).toBe(0);
    await stack.waitForClose('snap-bare');
    expect(journal(stack, 'snap-bare').map((e) => e.op)).toEqual(['clone', 'destroy']);
    await recordHistoryIfAsked('sbx-user-snapshots', 'snap-bare');
  });

  test('a forced restore under a running job ends the job FAILED with the reason, then tears down', async () => {
    const repo = await createExampleRepo(stack.home);
    await stack.startSleepingJob('snap-job', repo);
    expect((await stack.cli(['sandbox', 'snapshot', 'save', 'snap-job', 'mid', '--force'])).code).toBe(0);
    expect((await stack.cli(['sandbox', 'snapshot', 'restore', 'snap-job', 'mid', '--force', '--yes'])).code).toBe(0);
    await stack.waitForClose('snap-job');
    expect(await stack.describe('snap-job')).toMatchObject({
      jobStatus: 'FAILED',
      state: 'DESTROYED',
      message: 'the sandbox was restored to a snapshot while its job was running: the agent was killed',
    });
  });
});
