// Cuts PVE's API schema digest down to the endpoints the simulator needs (endpoints.ts) and writes data/'s copy:
// `node dist/simulators/proxmox/extract-schema.js <pve-8.4-endpoints.compact.json>`; simulators/proxmox/README.md.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { SCHEMA_FILE, simulatorData } from './data';
import { schemaEndpoints, type Endpoint } from './endpoints';

type SchemaDigest = { _source?: unknown; paths: Record<string, Record<string, unknown>> };

/** Keeps the source's `_source` and its order of paths and methods; an endpoint the source lacks is an error. */
export function cutSchema(source: SchemaDigest, endpoints: Endpoint[], provenance: Record<string, string>) {
  const paths: SchemaDigest['paths'] = {};
  const wanted = new Set(endpoints.map((e) => `${e.method} ${e.path}`));
  for (const [path, methods] of Object.entries(source.paths)) {
    for (const [method, spec] of Object.entries(methods)) {
      if (wanted.delete(`${method} ${path}`)) (paths[path] ??= {})[method] = spec;
    }
  }
  if (wanted.size > 0) throw new Error(`the source schema lacks ${[...wanted].join(', ')}: expected every endpoint`);
  const what = `paths cut to the ${endpoints.length} endpoints simulators/proxmox serves or checks (endpoints.ts)`;
  return { _source: source._source, _subset: { what, ...provenance }, paths };
}

function run(): void {
  const sourcePath = process.argv[2];
  if (!sourcePath) throw new Error(`usage: extract-schema.js <path to ${SCHEMA_FILE}>`);
  const text = readFileSync(sourcePath, 'utf8');
  const subset = cutSchema(JSON.parse(text) as SchemaDigest, schemaEndpoints(), {
    source_file: basename(sourcePath),
    source_sha256: createHash('sha256').update(text).digest('hex'),
    command: `node dist/simulators/proxmox/extract-schema.js ${basename(sourcePath)}`,
  });
  // One-space indentation, as the source is written: a diff against it stays readable.
  writeFileSync(simulatorData(SCHEMA_FILE), JSON.stringify(subset, null, 1) + '\n');
  console.error(`wrote ${Object.keys(subset.paths).length} paths to ${simulatorData(SCHEMA_FILE)}`);
}

if (require.main === module) {
  try {
    run();
  } catch (err) {
    console.error(err);
    process.exit(1);
  }
}
