// The Proxmox simulator's data: inside the repository, found from dist/ too, its schema digest holding
// exactly the paths extract-digest.ts keeps, and each file still what its README's provenance says it is.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../common/paths';
import { SCHEMA_FILE, simulatorData } from '../simulators/proxmox/data';
import { DIGEST_PATHS } from '../simulators/proxmox/extract-digest';

const read = (file: string) => readFileSync(simulatorData(file), 'utf8');
const schema = JSON.parse(read(SCHEMA_FILE)) as { paths: Record<string, unknown> };
const readme = readFileSync(join(packageRoot(), 'simulators', 'proxmox', 'README.md'), 'utf8');

test('the data lives next to the code, inside the repository', () => {
  for (const file of [SCHEMA_FILE, 'error-catalog.json', 'endpoint-semantics.json', 'storage-locks.json']) {
    expect(simulatorData(file)).toBe(join(packageRoot(), 'simulators', 'proxmox', 'data', file));
    expect(() => JSON.parse(read(file)) as unknown).not.toThrow();
  }
});

test('the schema digest holds exactly the paths extract-digest.ts keeps', () => {
  expect(Object.keys(schema.paths).sort()).toEqual([...DIGEST_PATHS].sort());
});

test("each file is the one the README's provenance names (its sha256, as the README abbreviates it)", () => {
  for (const file of [SCHEMA_FILE, 'error-catalog.json', 'endpoint-semantics.json']) {
    const sha256 = createHash('sha256').update(read(file)).digest('hex');
    expect({ file, inReadme: readme.includes(`\`${sha256.slice(0, 8)}…\``) }).toEqual({ file, inReadme: true });
  }
});

test('the built simulator (dist/scripts/pve-sim.js) finds its schema', async () => {
  const sim = spawn(process.execPath, [join(packageRoot(), 'dist', 'scripts', 'pve-sim.js'), '--port', '0', '--fast']);
  let stderr = '';
  sim.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const first = await createInterface({ input: sim.stdout })[Symbol.asyncIterator]().next();
    if (first.done) throw new Error(`pve-sim exited before printing its URL: ${stderr}`);
    const { url, tokenId, tokenSecret } = JSON.parse(first.value) as Record<string, string>;
    // Only the schema knows vmid's format (pve-vmid): this reply proves it was loaded.
    const reply = await fetch(`${url}/api2/json/cluster/nextid?vmid=7`, {
      headers: { authorization: `PVEAPIToken=${tokenId}=${tokenSecret}` },
    });
    expect(reply.status).toBe(400);
    expect(((await reply.json()) as { errors: Record<string, string> }).errors).toEqual({
      vmid: 'invalid format - value does not look like a valid VM ID\n',
    });
  } finally {
    sim.kill();
  }
});
