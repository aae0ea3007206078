// One snapshot-name rule (Proxmox's pve-snapshot-name plus agentlab's `clean`) for the workflow and both backends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../backends/local/backend';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { ProxmoxClient } from '../backends/proxmox/client';
import { PermanentBackendError } from '../backends/contract';
import type { Owner, ResolvedProfile } from '../common/contract';
import { snapshotNameProblem, userSnapshotNameProblem } from '../common/snapshot-names';

const owner: Owner = { jobId: 'job-names', workflowId: 'job-names' };

test("Proxmox's rule: a letter then at least one more of [a-z0-9_-], 40 at most, not current or pending", () => {
  for (const ok of ['ab', 's1', 'Before-Upgrade_2', 'x'.repeat(40), 'clean', 'Current']) {
    expect({ ok, problem: snapshotNameProblem(ok) }).toEqual({ ok, problem: undefined });
  }
  for (const bad of ['a', '', '9lives', '../x', 'a b', 'é1', 'x'.repeat(41), 'current', 'pending', 'PENDING']) {
    expect({ bad, problem: snapshotNameProblem(bad) }).toEqual({ bad, problem: expect.any(String) });
  }
  expect(snapshotNameProblem('a')).toBe(
    'snapshot name "a": expected a letter, then letters, digits, "_" or "-" (2 to 40 characters)',
  );
  expect(snapshotNameProblem('pending')).toBe('snapshot name "pending" is reserved by Proxmox');
  expect(userSnapshotNameProblem('clean')).toBe('snapshot name "clean" is reserved (revert rolls back to it)');
  expect(userSnapshotNameProblem('s1')).toBeUndefined();
});

test('the local backend refuses a and pending with the rule, before it copies anything', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-names-'));
  try {
    const backend = new LocalBackend({ dataDir, vmidRange: { min: 7000, max: 7009 }, isolation: 'none' });
    const vmid = await backend.allocate(owner, 1);
    const profile = { name: 'local', backend: 'local', cores: 1, memoryMb: 512 } as ResolvedProfile;
    await backend.clone({ vmid, owner }, profile);
    for (const name of ['a', 'pending']) {
      const refused = backend.snapshot({ vmid, owner }, name);
      await expect(refused).rejects.toBeInstanceOf(PermanentBackendError);
      await expect(refused).rejects.toThrow(snapshotNameProblem(name)!);
    }
    await expect(backend.snapshot({ vmid, owner }, 'ab')).resolves.toBeUndefined();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the Proxmox backend refuses them before it calls the API', async () => {
  // Nothing listens there: a request would be a (retryable) connection error, not this permanent one.
  const client = new ProxmoxClient({ url: 'http://127.0.0.1:9', tokenId: 'a@pve!b', tokenSecret: 'x' });
  const backend = new ProxmoxBackend({
    client,
    node: 'pve',
    vmidRange: { min: 7000, max: 7009 },
    snippetsDir: '/nonexistent',
  });
  for (const name of ['a', 'pending']) {
    await expect(backend.snapshot({ vmid: 7000, owner }, name)).rejects.toThrow(
      new PermanentBackendError(snapshotNameProblem(name)!),
    );
  }
  await client.close();
});
