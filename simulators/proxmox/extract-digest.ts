// Rebuilds data/pve-8.4-endpoints.compact.json from pve-docs' api-viewer/apidata.js (a maintainer's tool,
// never run by the simulator): `node dist/simulators/proxmox/extract-digest.js <apidata.js> [out.json]`.
import { readFileSync, writeFileSync } from 'node:fs';
import { simulatorData } from './data';

/** The paths agentlab, its scripts and the simulator's users call: the digest keeps these alone. */
export const DIGEST_PATHS = [
  '/cluster/nextid',
  '/cluster/resources',
  '/cluster/tasks',
  '/nodes',
  '/nodes/{node}/qemu',
  '/nodes/{node}/qemu/{vmid}',
  '/nodes/{node}/qemu/{vmid}/agent',
  '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces',
  '/nodes/{node}/qemu/{vmid}/agent/ping',
  '/nodes/{node}/qemu/{vmid}/clone',
  '/nodes/{node}/qemu/{vmid}/cloudinit',
  '/nodes/{node}/qemu/{vmid}/cloudinit/dump',
  '/nodes/{node}/qemu/{vmid}/config',
  '/nodes/{node}/qemu/{vmid}/pending',
  '/nodes/{node}/qemu/{vmid}/resize',
  '/nodes/{node}/qemu/{vmid}/snapshot',
  '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}',
  '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config',
  '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback',
  '/nodes/{node}/qemu/{vmid}/status/current',
  '/nodes/{node}/qemu/{vmid}/status/reboot',
  '/nodes/{node}/qemu/{vmid}/status/reset',
  '/nodes/{node}/qemu/{vmid}/status/resume',
  '/nodes/{node}/qemu/{vmid}/status/shutdown',
  '/nodes/{node}/qemu/{vmid}/status/start',
  '/nodes/{node}/qemu/{vmid}/status/stop',
  '/nodes/{node}/qemu/{vmid}/status/suspend',
  '/nodes/{node}/qemu/{vmid}/template',
  '/nodes/{node}/storage/{storage}/content',
  '/nodes/{node}/storage/{storage}/upload',
  '/nodes/{node}/tasks',
  '/nodes/{node}/tasks/{upid}',
  '/nodes/{node}/tasks/{upid}/log',
  '/nodes/{node}/tasks/{upid}/status',
  '/version',
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface TreeNode {
  path: string;
  info?: Record<string, Record<string, Json>>;
  children?: TreeNode[];
}

/** Prose and display hints are left out: the simulator needs types, formats, limits and shapes. */
const DISPLAY_ONLY = new Set(['verbose_description', 'renderer', 'title']);

function withoutProse(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutProse);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      // A property named `description` (a snapshot's, say) is a schema, not prose: only string ones go.
      .filter(([key, v]) => !(key === 'description' && typeof v === 'string') && !DISPLAY_ONLY.has(key))
      .map(([key, v]) => [key, withoutProse(v)]),
  );
}

function compactMethod(info: Record<string, Json>): Record<string, Json> {
  const { method: _method, name: _name, parameters, ...rest } = info;
  const properties = (parameters as { properties?: Record<string, Json> } | undefined)?.properties;
  const compactParams = properties
    ? Object.fromEntries(Object.entries(properties).map(([name, spec]) => [name, withoutProse(spec)]))
    : undefined;
  // Absent flags spelled out, so a reader of the digest never has to know the API viewer's defaults.
  return {
    protected: 0,
    proxyto: null,
    ...rest,
    parameters: compactParams ?? {},
    returns: withoutProse(rest.returns ?? null),
  };
}

export function extractDigest(apidata: string, source: Record<string, Json>): Record<string, Json> {
  // apidata.js is `const apiSchema = [...];` plus a line of code: parse the JSON array, never evaluate it.
  const tree = JSON.parse(apidata.slice(apidata.indexOf('['), apidata.lastIndexOf(']') + 1)) as TreeNode[];
  const infos = new Map<string, TreeNode['info']>();
  const walk = (nodes: TreeNode[]) =>
    nodes.forEach((n) => {
      if (n.info) infos.set(n.path, n.info);
      walk(n.children ?? []);
    });
  walk(tree);
  const paths: Record<string, Json> = {};
  for (const path of DIGEST_PATHS) {
    const info = infos.get(path);
    if (!info) throw new Error(`${path} is not in the API schema`);
    paths[path] = Object.fromEntries(Object.entries(info).map(([method, m]) => [method, compactMethod(m)]));
  }
  return { _source: source, paths };
}

function run(): void {
  const [input, output = simulatorData('pve-8.4-endpoints.compact.json')] = process.argv.slice(2);
  if (!input) throw new Error('usage: extract-digest <apidata.js> [out.json]');
  const previous = JSON.parse(readFileSync(simulatorData('pve-8.4-endpoints.compact.json'), 'utf8')) as {
    _source: Record<string, Json>;
  };
  const what =
    'Compact digest of pve-8.4-endpoints.json: per method, each parameter with its type, optional, default, enum, ' +
    'format, limits and typetext; property-string formats keep every key with its type, default key, alias and ' +
    'limits (descriptions dropped); the returns schema without descriptions.';
  const digest = extractDigest(readFileSync(input, 'utf8'), { ...previous._source, what });
  writeFileSync(output, JSON.stringify(digest, null, 2) + '\n');
}

if (require.main === module) run();
