// The Proxmox simulator's data: inside the repository, found from dist/ too, its schema cut to exactly the
// endpoints the simulator needs, and each file still what its README's provenance says it is.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../common/paths';
import { SCHEMA_FILE, simulatorData } from '../simulators/proxmox/data';
import { schemaEndpoints } from '../simulators/proxmox/endpoints';
import { cutSchema } from '../simulators/proxmox/extract-schema';

type Subset = ReturnType<typeof cutSchema> & { _subset: { source_sha256: string } };
const read = (file: string) => readFileSync(simulatorData(file), 'utf8');
const schema = JSON.parse(read(SCHEMA_FILE)) as Subset;
const readme = readFileSync(join(packageRoot(), 'simulators', 'proxmox', 'README.md'), 'utf8');

test('the data lives next to the code, inside the repository', () => {
  for (const file of [SCHEMA_FILE, 'error-catalog.json', 'endpoint-semantics.json']) {
    expect(simulatorData(file)).toBe(join(packageRoot(), 'simulators', 'proxmox', 'data', file));
    expect(() => JSON.parse(read(file)) as unknown).not.toThrow();
  }
});

test('the schema holds exactly the endpoints the simulator serves or checks, as extract-schema.ts cuts them', () => {
  const held = Object.entries(schema.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => `${m} ${path}`),
  );
  const wanted = schemaEndpoints().map((e) => `${e.method} ${e.path}`);
  expect(held.sort()).toEqual(wanted.sort());
  // Cutting the copy again changes nothing: the extraction is deterministic and the copy is its output.
  expect(cutSchema(schema, schemaEndpoints(), {}).paths).toEqual(schema.paths);
});

test("each file is the one the README's provenance names (sha256 of the source)", () => {
  const sha256 = (file: string) => createHash('sha256').update(read(file)).digest('hex');
  expect(readme).toContain(schema._subset.source_sha256);
  for (const copied of ['error-catalog.json', 'endpoint-semantics.json']) expect(readme).toContain(sha256(copied));
});

test('the built simulator (dist/scripts/pve-sim.js) finds its schema', async () => {
  const sim = spawn(process.execPath, [join(packageRoot(), 'dist', 'scripts', 'pve-sim.js'), '--port', '0', '--fast']);
  let stderr = '';
  sim.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const first = await createInterface({ input: sim.stdout })[Symbol.asyncIterator]().next();
    if (first.done) throw new Error(`pve-sim exited before printing its URL: ${stderr}`);
    const { url, tokenId, tokenSecret } = JSON.parse(first.value) as Record<string, string>;
    // Only the schema knows vmid is an integer of at least 100: this reply proves it was loaded.
    const reply = await fetch(`${url}/api2/json/cluster/nextid?vmid=7`, {
      headers: { authorization: `PVEAPIToken=${tokenId}=${tokenSecret}` },
    });
    expect(reply.status).toBe(400);
    expect(((await reply.json()) as { errors: Record<string, string> }).errors).toEqual({
      vmid: 'value must have a minimum value of 100',
    });
  } finally {
    sim.kill();
  }
});
