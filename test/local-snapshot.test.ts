// The local backend's snapshots: a copy of the sandbox's writable directories; rollback stops it and restores them.
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import { LocalBackend } from '../backends/local/backend';
import { PermanentBackendError } from '../backends/contract';
import type { Owner, ResolvedProfile } from '../common/contract';
import { guestBoot } from './support/guest-boot';

const profile = { name: 'local', backend: 'local', cores: 1, memoryMb: 512 } as ResolvedProfile;
const owner: Owner = { jobId: 'job-snap', workflowId: 'job-snap' };
const stranger: Owner = { jobId: 'job-other', workflowId: 'job-other' };

let dataDir: string;
let backend: LocalBackend;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'agentlab-local-snap-'));
  backend = new LocalBackend({ dataDir, vmidRange: { min: 7000, max: 7009 }, isolation: 'none' });
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

async function newSandbox(): Promise<{ vmid: number; dir: string }> {
  const vmid = await backend.allocate(owner, 1);
  await backend.clone({ vmid, owner }, profile);
  await backend.configure(
    { vmid, owner },
    profile,
    guestBoot(vmid, { jobId: owner.jobId, controllerUrl: 'http://127.0.0.1:1' }),
  );
  return { vmid, dir: join(dataDir, 'sandboxes', String(vmid)) };
}

test('rollback stops the running sandbox and restores what it changed after the snapshot', async () => {
  const { vmid, dir } = await newSandbox();
  writeFileSync(join(dir, 'work', 'notes.txt'), 'as booted\n');
  writeFileSync(join(dir, 'state', 'progress'), 'step 1\n');
  symlinkSync('notes.txt', join(dir, 'work', 'link'));
  await execa('mkfifo', [join(dir, 'work', 'pipe')]); // fs.cp would refuse it; cp -a keeps it
  await backend.snapshot({ vmid, owner }, 'clean');
  await backend.snapshot({ vmid, owner }, 'clean'); // a retried call: success, the first copy stays

  // A guest that runs and never ends (the broken-runner fault boots `sleep`): rollback must power it off.
  writeFileSync(join(dataDir, 'sandboxes', 'faults.json'), JSON.stringify({ guestRunnerBroken: true }));
  await backend.start({ vmid, owner });
  const { pid } = JSON.parse(readFileSync(join(dir, 'boot.json'), 'utf8')) as { pid: number };
  expect(await backend.guestAddress({ vmid, owner })).toBe('127.0.0.1');
  writeFileSync(join(dir, 'work', 'notes.txt'), 'changed by the agent\n');
  writeFileSync(join(dir, 'work', 'new-file'), 'x');
  rmSync(join(dir, 'state', 'progress'));

  await backend.rollback({ vmid, owner }, 'clean');
  expect(await backend.guestAddress({ vmid, owner })).toBeUndefined();
  expect(() => process.kill(pid, 0)).toThrow();
  expect(await backend.listOwned()).toEqual([{ vmid, jobId: 'job-snap', workflowId: 'job-snap', running: false }]);
  expect(readFileSync(join(dir, 'work', 'notes.txt'), 'utf8')).toBe('as booted\n');
  expect(existsSync(join(dir, 'work', 'new-file'))).toBe(false);
  expect(readFileSync(join(dir, 'state', 'progress'), 'utf8')).toBe('step 1\n');
  expect(readlinkSync(join(dir, 'work', 'link'))).toBe('notes.txt');
  expect(lstatSync(join(dir, 'work', 'pipe')).isFIFO()).toBe(true);

  // A second rollback starts from the snapshot again, which the first one left intact.
  writeFileSync(join(dir, 'work', 'notes.txt'), 'changed again\n');
  await backend.rollback({ vmid, owner }, 'clean');
  expect(readFileSync(join(dir, 'work', 'notes.txt'), 'utf8')).toBe('as booted\n');

  expect(await backend.destroy({ vmid, owner })).toBe('destroyed');
  expect(existsSync(dir)).toBe(false); // the snapshots live in the sandbox's folder and go with it
});

test("another owner's sandbox, a missing snapshot and a name that is not a snapshot name are refused", async () => {
  const { vmid, dir } = await newSandbox();
  writeFileSync(join(dir, 'work', 'notes.txt'), 'mine\n');
  await expect(backend.snapshot({ vmid, owner: stranger }, 'clean')).rejects.toBeInstanceOf(PermanentBackendError);
  await expect(backend.rollback({ vmid, owner }, 'clean')).rejects.toThrow(`sandbox ${vmid} has no snapshot 'clean'`);
  await backend.snapshot({ vmid, owner }, 'clean');
  writeFileSync(join(dir, 'work', 'notes.txt'), 'changed\n');
  await expect(backend.rollback({ vmid, owner: stranger }, 'clean')).rejects.toThrow(/belongs to job-snap/);
  expect(readFileSync(join(dir, 'work', 'notes.txt'), 'utf8')).toBe('changed\n');
  for (const name of ['../escape', 'current', '1st', '']) {
    await expect(backend.snapshot({ vmid, owner }, name)).rejects.toThrow(`snapshot name "${name}"`);
  }
  await expect(backend.snapshot({ vmid: 7009, owner }, 'clean')).rejects.toThrow('sandbox 7009 does not exist');
});
