// `npm run bench -- leases` at a tiny size (4 sandboxes, 8 s leases): the JSON line carries every figure, and
// they add up (every lease expired and was measured, every sandbox destroyed). About 15 s.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const BENCH = join(__dirname, '..', 'dist', 'bench', 'bench-leases.js');

test('the leases benchmark prints one JSON line whose figures add up', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [BENCH, '--n', '4', '--ttl', '8s', '--renew-ttl', '4s', '--json'],
    { timeout: 90_000 },
  );
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const result = JSON.parse(lines[0]!) as Record<string, number>;
  expect(result).toMatchObject({ sandboxes: 4, leased: 4, renewed: 2, expired: 4, destroyed: 4, errors: 0 });
  for (const field of [
    'workerRssMb',
    'workerRssPeakMb',
    'expiryLatenessP50Ms',
    'expiryLatenessP99Ms',
    'expiryLatenessMaxMs',
    'stickyCacheHits',
    'stickyCacheMisses',
    'stickyCacheSizeLeased',
    'workerCpuSeconds',
  ]) {
    expect(Number.isFinite(result[field])).toBe(true);
  }
  expect(result.workerRssPeakMb).toBeGreaterThanOrEqual(result.workerRssMb!);
  // A lease expires no earlier than it is due, and on an idle stack well within the 8 s lease.
  expect(result.expiryLatenessP50Ms).toBeGreaterThanOrEqual(0);
  expect(result.expiryLatenessMaxMs).toBeLessThan(8000);
  expect(result.stickyCacheSizeLeased).toBe(4 + 1); // the sandboxes and the host's admission workflow
});
