// Conformance: every method of every path in the simulator's PVE 8.4 schema digest answers (never 501), a call
// made to succeed answers 200 with the shape the schema's `returns` describes, and its task ends OK.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxClient } from '../backends/proxmox/client';
import { simulatorData } from '../simulators/proxmox/data';
import { PveSim } from '../simulators/proxmox/server';
import { shapeProblems } from './support/schema-shape';
import { setTimeout as sleep } from 'node:timers/promises';

type Digest = { paths: Record<string, Record<string, { returns: Parameters<typeof shapeProblems>[1] }>> };
const digest = JSON.parse(readFileSync(simulatorData('pve-8.4-endpoints.compact.json'), 'utf8')) as Digest;

/**
 * One call per schema method that real Proxmox would answer with 200, against the fixture below: VM 101 running
 * (cloned from template 9000, a `clean` snapshot, booted), VM 102 stopped and disk-less, a finished task.
 */
const CALLS: Record<string, { path?: string; params?: Record<string, string | number> }> = {
  'GET /cluster/nextid': {},
  'GET /cluster/resources': {},
  'GET /cluster/tasks': {},
  'GET /nodes': {},
  'GET /nodes/{node}/qemu': { params: { full: 1 } },
  'POST /nodes/{node}/qemu': {
    params: {
      vmid: 120,
      name: 'made',
      memory: '1024',
      net0: 'virtio,bridge=vmbr1',
      scsi0: 'local-lvm:4',
      ide2: 'local-lvm:cloudinit',
    },
  },
  'DELETE /nodes/{node}/qemu/{vmid}': { path: '/nodes/pve/qemu/102', params: { purge: 1 } },
  'GET /nodes/{node}/qemu/{vmid}': {},
  'GET /nodes/{node}/qemu/{vmid}/agent': {},
  'POST /nodes/{node}/qemu/{vmid}/agent': { params: { command: 'get-osinfo' } },
  'GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces': {},
  'POST /nodes/{node}/qemu/{vmid}/agent/ping': {},
  'POST /nodes/{node}/qemu/{vmid}/clone': { path: '/nodes/pve/qemu/9000/clone', params: { newid: 130, name: 'c130' } },
  'GET /nodes/{node}/qemu/{vmid}/cloudinit': {},
  'PUT /nodes/{node}/qemu/{vmid}/cloudinit': {},
  'GET /nodes/{node}/qemu/{vmid}/cloudinit/dump': { params: { type: 'user' } },
  'GET /nodes/{node}/qemu/{vmid}/config': {},
  'POST /nodes/{node}/qemu/{vmid}/config': { params: { cores: 4 } },
  'PUT /nodes/{node}/qemu/{vmid}/config': { params: { memory: '4096' } },
  'GET /nodes/{node}/qemu/{vmid}/pending': {},
  'PUT /nodes/{node}/qemu/{vmid}/resize': { params: { disk: 'scsi0', size: '+1G' } },
  'GET /nodes/{node}/qemu/{vmid}/snapshot': {},
  'POST /nodes/{node}/qemu/{vmid}/snapshot': { params: { snapname: 'second' } },
  'DELETE /nodes/{node}/qemu/{vmid}/snapshot/{snapname}': {},
  'GET /nodes/{node}/qemu/{vmid}/snapshot/{snapname}': {},
  'GET /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config': {},
  'PUT /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config': { params: { description: 'after boot' } },
  'POST /nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback': {},
  'GET /nodes/{node}/qemu/{vmid}/status/current': {},
  'POST /nodes/{node}/qemu/{vmid}/status/reboot': {},
  'POST /nodes/{node}/qemu/{vmid}/status/reset': {},
  'POST /nodes/{node}/qemu/{vmid}/status/resume': {},
  'POST /nodes/{node}/qemu/{vmid}/status/shutdown': {},
  'POST /nodes/{node}/qemu/{vmid}/status/start': { path: '/nodes/pve/qemu/102/status/start' },
  'POST /nodes/{node}/qemu/{vmid}/status/stop': {},
  'POST /nodes/{node}/qemu/{vmid}/status/suspend': {},
  'POST /nodes/{node}/qemu/{vmid}/template': { path: '/nodes/pve/qemu/102/template' },
  'GET /nodes/{node}/storage/{storage}/content': {},
  'POST /nodes/{node}/storage/{storage}/content': { params: { filename: 'vm-101-disk-9', size: '1G', vmid: 101 } },
  'POST /nodes/{node}/storage/{storage}/upload': { path: '/nodes/pve/storage/local/upload' },
  'GET /nodes/{node}/tasks': { params: { source: 'all' } },
  'DELETE /nodes/{node}/tasks/{upid}': {},
  'GET /nodes/{node}/tasks/{upid}': {},
  'GET /nodes/{node}/tasks/{upid}/log': {},
  'GET /nodes/{node}/tasks/{upid}/status': {},
  'GET /version': {},
};

let sim: PveSim;
let client: ProxmoxClient;
let snippetsDir: string;
let finished: string;

beforeEach(async () => {
  snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-conformance-'));
  sim = new PveSim({ snippetsDir, authFailureDelayMs: 0, latency: { bootMs: 50, agentPingTimeoutMs: 10 } });
  await sim.listen();
  sim.addTemplate(9000);
  sim.addVm(102);
  client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  const fast = { initialIntervalMs: 5 };
  finished = await client.post<string>('/nodes/pve/qemu/9000/clone', { newid: 101, name: 'vm101' });
  await client.waitTask(finished, fast);
  await client.put('/nodes/pve/qemu/101/config', { ipconfig0: 'ip=dhcp', ciuser: 'agent' });
  await client.waitTask(await client.post<string>('/nodes/pve/qemu/101/snapshot', { snapname: 'clean' }), fast);
  await client.waitTask(await client.post<string>('/nodes/pve/qemu/101/status/start'), fast);
  await sleep(60); // booted: the agent answers
});

afterEach(async () => {
  await client.close();
  await sim.close();
  rmSync(snippetsDir, { recursive: true, force: true });
});

const methods = Object.entries(digest.paths).flatMap(([path, byMethod]) =>
  Object.keys(byMethod).map((method) => `${method} ${path}`),
);

test('the call table covers exactly the digest', () => {
  expect(Object.keys(CALLS).sort()).toEqual([...methods].sort());
});

test.each(methods)('%s', async (key) => {
  const [method, template] = key.split(' ') as [string, string];
  const call = CALLS[key]!;
  const path =
    call.path ??
    template
      .replace('{node}', 'pve')
      .replace('{vmid}', '101')
      .replace('{snapname}', 'clean')
      .replace('{storage}', 'local-lvm')
      .replace('{upid}', encodeURIComponent(finished));
  const query = new URLSearchParams(
    Object.entries(call.params ?? {}).map(([k, v]): [string, string] => [k, String(v)]),
  );
  const inQuery = method === 'GET' || method === 'DELETE';
  let body: URLSearchParams | FormData | undefined = inQuery ? undefined : query;
  if (key.endsWith('/upload')) {
    body = new FormData();
    body.set('content', 'iso');
    body.set('filename', 'tools.iso');
    body.set('file', new Blob(['not really an ISO']), 'tools.iso');
  }
  const response = await fetch(`${sim.url}/api2/json${path}${inQuery && call.params ? `?${query}` : ''}`, {
    method,
    headers: { Authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}` },
    body,
  });
  const text = await response.text();
  expect({ key, status: response.status }).not.toEqual({ key, status: 501 });
  expect({ key, status: response.status, text: response.ok ? '' : text }).toEqual({ key, status: 200, text: '' });
  const { data } = JSON.parse(text) as { data: unknown };
  const returns = digest.paths[template]![method]!.returns;
  // The schema types pending's values as strings, but load_config has typed them (check_type): `cores` is 2.
  const loose = (p: string) => /^data\[\d+\]\.(value|pending): expected string, got \d+(\.\d+)?$/.test(p);
  const problems = shapeProblems(data, returns).filter((p) => !(key.endsWith('/pending') && loose(p)));
  expect({ key, problems }).toEqual({ key, problems: [] });
  if (typeof data === 'string' && data.startsWith('UPID:')) {
    const done = await client.waitTask(data, { initialIntervalMs: 5 });
    expect({ key, exitstatus: done.exitstatus }).toEqual({ key, exitstatus: 'OK' });
  }
});
