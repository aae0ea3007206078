// The simulator's answers have real Proxmox's shapes: a cluster of several nodes, /nodes and /cluster/resources
// with every key and the type filter, status/current's key set, typed config values, MACs written by Proxmox and
// reported by the guest agent, task logs paged with "no content", and pve-common's refusals.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxmoxClient } from '../backends/proxmox/client';
import { PveSim } from '../simulators/proxmox/server';
import { setTimeout as sleep } from 'node:timers/promises';

let sim: PveSim;
let client: ProxmoxClient;
let snippetsDir: string;
const fast = { initialIntervalMs: 5 };

async function start(options: ConstructorParameters<typeof PveSim>[0] = {}): Promise<void> {
  snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-shapes-'));
  sim = new PveSim({ snippetsDir, authFailureDelayMs: 0, ...options });
  await sim.listen();
  client = new ProxmoxClient({
    url: sim.url,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    fingerprint: sim.fingerprint,
  });
}
afterEach(async () => {
  await client.close();
  await sim.close();
  rmSync(snippetsDir, { recursive: true, force: true });
});

/** A raw call: status and body as sent, for what the typed client would hide (checked field by field). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function raw(method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  const response = await fetch(`${sim.url}/api2/json${path}`, {
    method,
    headers: {
      Authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/x-www-form-urlencoded' }),
    },
    body,
  });
  return { status: response.status, json: await response.json().catch(() => undefined) };
}

const keys = (o: object) => Object.keys(o).sort();
const NODE_KEYS = 'cpu disk id level maxcpu maxdisk maxmem mem node status type uptime'.split(' ');

test('a cluster of three nodes: /nodes and /cluster/resources with every key, filtered by type', async () => {
  await start({ nodes: ['node1', 'node2', 'node3'], tls: true });
  sim.addTemplate(9000, { node: 'node3' });
  sim.addVm(150, { tags: 'x' }, true, 'node2');
  const nodes = await client.get<Record<string, unknown>[]>('/nodes');
  expect(nodes.map((n) => n.node)).toEqual(['node1', 'node2', 'node3']);
  for (const n of nodes) {
    expect(keys(n)).toEqual([...NODE_KEYS, 'ssl_fingerprint'].sort());
    expect(n).toMatchObject({ id: `node/${n.node}`, type: 'node', status: 'online', ssl_fingerprint: sim.fingerprint });
  }

  const pinned = client;
  const all = await pinned.get<Record<string, unknown>[]>('/cluster/resources');
  const byType = (type: string) => all.filter((r) => r.type === type);
  expect(byType('node')).toHaveLength(3);
  expect(keys(byType('node')[0]!)).toEqual([...NODE_KEYS, 'cgroup-mode'].sort());
  expect(byType('storage').map((s) => s.id)).toEqual(
    ['local', 'local-lvm', 'local-zfs'].flatMap((id) => ['node1', 'node2', 'node3'].map((n) => `storage/${n}/${id}`)),
  );
  expect(keys(byType('storage')[0]!)).toEqual(
    'content disk id maxdisk node plugintype shared status storage type'.split(' ').sort(),
  );
  expect(byType('storage').find((s) => s.storage === 'local-lvm')).toMatchObject({
    plugintype: 'lvmthin',
    content: 'images,rootdir',
    shared: 0,
  });
  const vms = byType('qemu');
  expect(vms.map((v) => [v.vmid, v.node])).toEqual([
    [150, 'node2'],
    [9000, 'node3'],
  ]);
  expect(keys(vms[0]!)).toEqual(
    'cpu disk diskread diskwrite id maxcpu maxdisk maxmem mem name netin netout node status tags template type uptime vmid'
      .split(' ')
      .sort(),
  );
  for (const type of ['vm', 'node', 'storage'] as const) {
    const filtered = await pinned.get<Record<string, unknown>[]>('/cluster/resources', { type });
    expect(new Set(filtered.map((r) => r.type))).toEqual(new Set([type === 'vm' ? 'qemu' : type]));
  }
  expect(await pinned.get('/cluster/resources', { type: 'sdn' })).toEqual([]);

  // Each node answers for its own VMs only, and an unknown node is a failed hostname lookup.
  await expect(pinned.get('/nodes/node1/qemu/150/config')).rejects.toThrow(
    "Configuration file 'nodes/node1/qemu-server/150.conf' does not exist",
  );
  expect(await pinned.get('/nodes/node2/qemu/150/config')).toMatchObject({ tags: 'x' });
  await expect(pinned.get('/nodes/node9/qemu')).rejects.toThrow("hostname lookup 'node9' failed");
  expect((await pinned.get<{ vmid: number }[]>('/nodes/node3/qemu')).map((v) => v.vmid)).toEqual([9000]);
});

test("status/current has vmstatus's key set: qemu's own keys only while running, qmpstatus as QMP says", async () => {
  await start();
  sim.addVm(150, { agent: '1', serial0: 'socket' });
  const STOPPED =
    'agent cpu cpus disk ha maxdisk maxmem mem name netin netout qmpstatus serial status uptime vmid'.split(' ');
  const stopped = await client.get<Record<string, unknown>>('/nodes/pve/qemu/150/status/current');
  expect(keys(stopped)).toEqual(STOPPED.sort());
  // qemu-server vmstatus($vmid, 1) ends by copying status into qmpstatus for every VM QMP did not answer for.
  expect(stopped).toMatchObject({ status: 'stopped', qmpstatus: 'stopped', ha: { managed: 0 }, agent: 1, serial: 1 });
  await client.waitTask(await client.post<string>('/nodes/pve/qemu/150/status/start'), fast);
  const running = await client.get<Record<string, unknown>>('/nodes/pve/qemu/150/status/current');
  const RUNNING_ONLY = 'blockstat diskread diskwrite nics pid proxmox-support running-machine running-qemu'.split(' ');
  expect(keys(running)).toEqual([...STOPPED, ...RUNNING_ONLY].sort());
  expect(running).toMatchObject({ status: 'running', qmpstatus: 'running' });
  await client.waitTask(await client.post<string>('/nodes/pve/qemu/150/status/suspend'), fast);
  expect(await client.get('/nodes/pve/qemu/150/status/current')).toMatchObject({
    status: 'running',
    qmpstatus: 'paused',
  });
});

test('config values typed as the schema says; net0 gets a MAC on write, which the guest agent reports', async () => {
  await start({ latency: { bootMs: 50, linkLocalMs: 250, agentPingTimeoutMs: 10 } });
  sim.addTemplate(9000);
  await client.waitTask(await client.post<string>('/nodes/pve/qemu/9000/clone', { newid: 101 }), fast);
  await client.put('/nodes/pve/qemu/101/config', {
    kvm: true,
    onboot: 1,
    cores: 2,
    memory: '2048',
    net0: 'virtio,bridge=vmbr1',
  });
  const config = await client.get<Record<string, unknown>>('/nodes/pve/qemu/101/config');
  expect(config).toMatchObject({ kvm: 1, onboot: 1, cores: 2, memory: '2048', agent: '1' });
  const mac = /^virtio=(BC:24:11(?::[0-9A-F]{2}){3}),bridge=vmbr1$/.exec(String(config.net0))?.[1];
  expect(mac).toBeDefined();

  await client.waitTask(await client.post<string>('/nodes/pve/qemu/101/status/start'), fast);
  await sleep(60);
  type Nic = {
    name: string;
    'hardware-address': string;
    'ip-addresses': { 'ip-address': string }[];
    statistics: object;
  };
  const read = async () =>
    (await client.get<{ result: Nic[] }>('/nodes/pve/qemu/101/agent/network-get-interfaces')).result;
  const early = await read();
  const eth0 = early.find((n) => n.name === 'eth0')!;
  expect(eth0['hardware-address']).toBe(mac!.toLowerCase());
  // Booted but no DHCP lease yet: eth0 has only its link-local address (EUI-64 from the MAC).
  expect(eth0['ip-addresses'].map((a) => a['ip-address'])).toEqual([
    expect.stringMatching(/^fe80::be24:11ff:fe[0-9a-f]{2}:[0-9a-f]{1,4}$/),
  ]);
  expect(early.find((n) => n.name === 'lo')!['ip-addresses'].map((a) => a['ip-address'])).toEqual(['127.0.0.1', '::1']);
  expect(keys(eth0.statistics)).toEqual(
    'rx-bytes rx-dropped rx-errs rx-packets tx-bytes tx-dropped tx-errs tx-packets'.split(' '),
  );
  await sleep(260);
  const leased = (await read()).find((n) => n.name === 'eth0')!;
  expect(leased['ip-addresses'].map((a) => a['ip-address'])).toEqual([
    `10.77.0.101`,
    eth0['ip-addresses'][0]!['ip-address'],
  ]);
});

test('task logs are paged by start and limit; an empty log is one "no content" line', async () => {
  await start({ latency: { stopMs: 400 } });
  sim.addTemplate(9000);
  const clone = await client.post<string>('/nodes/pve/qemu/9000/clone', { newid: 101 });
  await client.waitTask(clone, fast);
  const path = `/nodes/pve/tasks/${encodeURIComponent(clone)}/log`;
  const whole = await raw('GET', path);
  expect(whole.json.total).toBeGreaterThanOrEqual(3);
  expect(whole.json.data.at(-1)).toEqual({ n: whole.json.total, t: 'TASK OK' });
  const page = await raw('GET', `${path}?start=1&limit=2`);
  expect(page.json).toEqual({ data: whole.json.data.slice(1, 3), total: whole.json.total });
  expect((await raw('GET', `${path}?start=100`)).json).toEqual({ data: [], total: whole.json.total });

  sim.addVm(102, {}, true);
  const stopping = await client.post<string>('/nodes/pve/qemu/102/status/stop');
  const empty = await raw('GET', `/nodes/pve/tasks/${encodeURIComponent(stopping)}/log`);
  expect(empty.json).toEqual({ data: [{ n: 1, t: 'no content' }], total: 1 });
  const list = await raw('GET', '/nodes/pve/tasks?source=active');
  expect(list.json).toMatchObject({
    total: 1,
    data: [{ upid: stopping, status: 'RUNNING', type: 'qmstop', id: '102' }],
  });
});

test("resize as qemu-server's resize_vm: grows, an equal size is a no-op, a shrink or a missing VM fails the task", async () => {
  await start();
  sim.addTemplate(9000); // scsi0 8G
  await client.waitTask(await client.post<string>('/nodes/pve/qemu/9000/clone', { newid: 101 }), fast);
  const resize = async (params: Record<string, string>, vmid = 101) =>
    client.waitTask(await client.put<string>(`/nodes/pve/qemu/${vmid}/resize`, params), fast);
  const scsi0 = () => String(sim.vm(101)!.config.scsi0);
  await resize({ disk: 'scsi0', size: '20G' });
  expect(scsi0()).toBe('local-lvm:vm-101-disk-0,size=20G');
  await resize({ disk: 'scsi0', size: '20G' });
  await resize({ disk: 'scsi0', size: '+512M' });
  expect(scsi0()).toBe('local-lvm:vm-101-disk-0,size=20992M');
  await expect(resize({ disk: 'scsi0', size: '8G' })).rejects.toThrow(
    'task resize 101: shrinking disks is not supported',
  );
  await expect(resize({ disk: 'scsi1', size: '8G' })).rejects.toThrow("disk 'scsi1' does not exist");
  // Accepted with a UPID: the worker's load_config is what finds no VM.
  await expect(resize({ disk: 'scsi0', size: '8G' }, 404)).rejects.toThrow(
    "task resize 404: Configuration file 'nodes/pve/qemu-server/404.conf' does not exist",
  );
});

test("refusals in pve-common's words: property-string keys, repeated form keys", async () => {
  await start();
  sim.addVm(150);
  const badKey = await raw('PUT', '/nodes/pve/qemu/150/config', 'agent=enabled%3D1%2Cfoo%3D1');
  expect(badKey).toMatchObject({
    status: 400,
    json: { errors: { agent: 'invalid format - invalid key in comma-separated list property: foo\n' } },
  });
  const repeated = await raw('PUT', '/nodes/pve/qemu/150/config', 'cores=2&cores=4');
  expect(repeated).toMatchObject({
    status: 400,
    json: {
      message: 'Parameter verification failed.\n',
      errors: { cores: "type check ('integer') failed - got ARRAY" },
    },
  });
  expect(sim.vm(150)?.config.cores).toBe(1);
});
