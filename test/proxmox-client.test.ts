// Contract tests: every call the Proxmox client makes, against the simulator, and every catalogued error it can meet.
import { readFileSync } from 'node:fs';
import { apiPath, encodeParams, ProxmoxClient } from '../backends/proxmox/client';
import { classifyPveError, type PveError, type PveErrorKind } from '../backends/proxmox/errors';
import { ProxmoxBackend } from '../backends/proxmox/backend';
import { PermanentBackendError } from '../backends/contract';
import { simulatorData } from '../simulators/proxmox/data';
import { PveSim } from '../simulators/proxmox/server';
import { setTimeout as sleep } from 'node:timers/promises';

let sim: PveSim;
let client: ProxmoxClient;
/** Closed after each test, clients before their simulator. */
const open: { close(): Promise<void> }[] = [];

async function startSim(options: ConstructorParameters<typeof PveSim>[0] = {}): Promise<void> {
  sim = new PveSim({ authFailureDelayMs: 20, ...options });
  await sim.listen();
  sim.addTemplate(9000);
  client = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  open.push(client, sim);
}

afterEach(async () => {
  for (const resource of open.splice(0)) await resource.close();
});

const vm = (vmid: number, rest = '') => apiPath`/nodes/pve/qemu/${vmid}` + rest;
const fast = { initialIntervalMs: 10 };

async function rejection(promise: Promise<unknown>): Promise<PveError> {
  try {
    await promise;
  } catch (err) {
    return err as PveError;
  }
  throw new Error('expected a rejection');
}

describe.each(['modern', 'legacy'] as const)('client against the simulator (%s error bodies)', (errorFormat) => {
  beforeEach(() => startSim({ errorFormat }));

  test('reads version, nodes, resources and nextid in the {data} envelope', async () => {
    expect(await client.get('/version')).toMatchObject({ release: '8.4' });
    expect(await client.get('/nodes')).toEqual([expect.objectContaining({ node: 'pve', status: 'online' })]);
    expect(await client.get('/cluster/resources', { type: 'vm' })).toEqual([
      expect.objectContaining({ vmid: 9000, template: 1 }),
    ]);
    expect(await client.get('/cluster/nextid')).toBe('100');
    const taken = await rejection(client.get('/cluster/nextid', { vmid: 9000 }));
    expect(taken).toMatchObject({ kind: 'parameter' });
    expect(taken.errors).toEqual({ vmid: 'VM 9000 already exists' });
    expect(taken.pveMessage).toBe('Parameter verification failed.');
  });

  test('clone → config → start → agent → stop → destroy, with UPID tasks and onPoll', async () => {
    const polls: number[] = [];
    const upid = await client.post<string>(vm(9000, '/clone'), { newid: 7001, full: false, name: 'sbx-7001' });
    expect(upid).toMatch(/^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmclone:9000:agentlab@pve!ci:$/);
    // The new VM exists at once, locked, and a concurrent config change fails with the real text.
    const locked = await rejection(client.put(vm(7001, '/config'), { cores: 2 }));
    expect(locked).toMatchObject({ kind: 'locked' });
    expect(locked.pveMessage).toBe('VM is locked (clone)');
    expect(locked.retryable).toBe(true);
    const done = await client.waitTask(upid, { ...fast, onPoll: () => polls.push(1) });
    expect(done).toMatchObject({ status: 'stopped', exitstatus: 'OK', user: 'agentlab@pve', tokenid: 'ci' });
    expect(polls.length).toBeGreaterThan(0);

    await client.put(vm(7001, '/config'), {
      tags: 'agentlab;agentlab-x',
      sshkeys: 'ssh-ed25519 AAAAC3Nza/C1+lZDI1NTE5 me@host',
      ciupgrade: false,
      cicustom: 'user=local:snippets/agentlab-7001.yaml',
    });
    const config = await client.get<Record<string, unknown>>(vm(7001, '/config'));
    expect(config).toMatchObject({ tags: 'agentlab;agentlab-x', ciupgrade: 0, name: 'sbx-7001' });
    expect(decodeURIComponent(String(config.sshkeys))).toBe('ssh-ed25519 AAAAC3Nza/C1+lZDI1NTE5 me@host');

    await client.waitTask(await client.post<string>(vm(7001, '/status/start')), fast);
    const again = await rejection(client.waitTask(await client.post<string>(vm(7001, '/status/start')), fast));
    expect(again).toMatchObject({ kind: 'already-running' });
    const booting = await rejection(client.get(vm(7001, '/agent/network-get-interfaces')));
    expect(booting).toMatchObject({ kind: 'agent-not-running' });
    expect(booting.pveMessage).toBe('QEMU guest agent is not running');
    await sleep(120);
    const nics = await client.get<{ result: { name: string }[] }>(vm(7001, '/agent/network-get-interfaces'));
    expect(nics.result.map((n) => n.name)).toEqual(['lo', 'eth0']);

    const running = await rejection(client.delete(vm(7001), { purge: true }));
    expect(running.pveMessage).toBe('VM 7001 is running - destroy failed');
    await client.waitTask(await client.post<string>(vm(7001, '/status/stop')), fast);
    const log = await client.get<{ n: number; t: string }[]>(apiPath`/nodes/pve/tasks/${upid}/log`);
    expect(log.at(-1)).toEqual({ n: log.length, t: 'TASK OK' });
    await client.waitTask(
      await client.delete<string>(vm(7001), { purge: true, 'destroy-unreferenced-disks': true }),
      fast,
    );
    expect(sim.vm(7001)).toBeUndefined();
    const gone = await rejection(client.get(vm(7001, '/config')));
    expect(gone).toMatchObject({ kind: 'not-found' });
    expect(gone.pveMessage).toBe("Configuration file 'nodes/pve/qemu-server/7001.conf' does not exist");
  });

  test('snapshot → list → rollback → delete: qmsnapshot/qmrollback/qmdelsnapshot tasks holding their locks', async () => {
    await client.waitTask(await client.post<string>(vm(9000, '/clone'), { newid: 7003, full: false }), fast);
    await client.put(vm(7003, '/config'), { tags: 'agentlab', cores: 2 });
    await client.waitTask(await client.post<string>(vm(7003, '/status/start')), fast);
    sim.state.latency.snapshotMs = 300;
    const taking = await client.post<string>(vm(7003, '/snapshot'), {
      snapname: 'clean',
      vmstate: false,
      description: 'after first boot',
    });
    expect(taking).toMatch(/:qmsnapshot:7003:agentlab@pve!ci:$/);
    // While the task runs the config carries lock `snapshot`, and what checks the lock fails on it.
    await sleep(100);
    expect(await client.get(vm(7003, '/config'))).toMatchObject({ lock: 'snapshot' });
    const locked = await rejection(client.put(vm(7003, '/config'), { cores: 3 }));
    expect(locked).toMatchObject({ kind: 'locked' });
    expect(locked.pveMessage).toBe('VM is locked (snapshot)');
    const lockedStop = await rejection(client.waitTask(await client.post<string>(vm(7003, '/status/stop')), fast));
    expect(lockedStop.pveMessage).toBe('VM is locked (snapshot)');
    expect(lockedStop.retryable).toBe(true);
    await client.waitTask(taking, fast);
    expect(sim.vm(7003)?.status).toBe('running');

    const snapshots = await client.get<Record<string, unknown>[]>(vm(7003, '/snapshot'));
    expect(snapshots).toEqual([
      { name: 'clean', description: 'after first boot', snaptime: expect.any(Number), vmstate: 0 },
      { name: 'current', description: 'You are here!', digest: expect.any(String), running: 1, parent: 'clean' },
    ]);
    const again = await rejection(
      client.waitTask(await client.post<string>(vm(7003, '/snapshot'), { snapname: 'clean' }), fast),
    );
    expect(again).toMatchObject({ kind: 'snapshot-exists' });
    expect(again.pveMessage).toBe("snapshot name 'clean' already used");
    const reserved = await rejection(client.post(vm(7003, '/snapshot'), { snapname: 'current' }));
    expect(reserved).toMatchObject({ kind: 'other' });
    expect(reserved.retryable).toBe(false);
    expect(reserved.pveMessage).toBe("unable to use snapshot name 'current' (reserved name)");
    expect(sim.vm(7003)?.snapshots?.size).toBe(1);

    // A change after the snapshot, then a rollback of the running VM: stopped, config back, lock held meanwhile.
    await client.put(vm(7003, '/config'), { cores: 8, memory: '4096' });
    sim.state.latency.rollbackMs = 300;
    const rolling = await client.post<string>(vm(7003, '/snapshot/clean/rollback'));
    expect(rolling).toMatch(/:qmrollback:7003:/);
    await sleep(150);
    expect(sim.vm(7003)?.config.lock).toBe('rollback');
    await client.waitTask(rolling, fast);
    expect(sim.vm(7003)?.status).toBe('stopped');
    const config = await client.get<Record<string, unknown>>(vm(7003, '/config'));
    expect(config).toMatchObject({ cores: 2, memory: '2048', tags: 'agentlab', parent: 'clean' });
    expect(config.lock).toBeUndefined();
    const {
      digest: _d,
      parent: _p,
      snaptime: _t,
      description: _desc,
      ...snapConfig
    } = await client.get<Record<string, unknown>>(vm(7003, '/snapshot/clean/config'));
    const { digest: _d2, parent: _p2, description: _desc2, ...current } = config;
    expect(current).toEqual(snapConfig);
    const missing = await rejection(
      client.waitTask(await client.post<string>(vm(7003, '/snapshot/gone/rollback')), fast),
    );
    expect(missing).toMatchObject({ kind: 'snapshot-missing' });
    expect(missing.pveMessage).toBe("snapshot 'gone' does not exist");

    sim.state.latency.deleteSnapshotMs = 300;
    const deleting = await client.delete<string>(vm(7003, '/snapshot/clean'));
    expect(deleting).toMatch(/:qmdelsnapshot:7003:/);
    await sleep(100);
    expect(await client.get(vm(7003, '/snapshot'))).toEqual([
      expect.objectContaining({ name: 'clean', snapstate: 'delete' }),
      expect.objectContaining({ name: 'current' }),
    ]);
    expect(sim.vm(7003)?.config.lock).toBe('snapshot-delete');
    await client.waitTask(deleting, fast);
    expect(await client.get(vm(7003, '/snapshot'))).toEqual([
      { name: 'current', description: 'You are here!', digest: expect.any(String), running: 0 },
    ]);
    const deletedTwice = await rejection(
      client.waitTask(await client.delete<string>(vm(7003, '/snapshot/clean')), fast),
    );
    expect(deletedTwice).toMatchObject({ kind: 'snapshot-missing' });
  });

  test('snapshots are not copied by clone, go with destroy, and fail on templates and raw disks', async () => {
    await client.waitTask(await client.post<string>(vm(9000, '/clone'), { newid: 7004, full: false }), fast);
    await client.waitTask(await client.post<string>(vm(7004, '/snapshot'), { snapname: 'clean' }), fast);
    await client.waitTask(await client.post<string>(vm(7004, '/clone'), { newid: 7005, full: true }), fast);
    expect(await client.get(vm(7005, '/snapshot'))).toEqual([expect.objectContaining({ name: 'current' })]);
    expect(sim.vm(7005)?.config.parent).toBeUndefined();
    await client.waitTask(await client.delete<string>(vm(7004)), fast);
    const gone = await rejection(client.get(vm(7004, '/snapshot')));
    expect(gone).toMatchObject({ kind: 'not-found' });
    expect(gone.pveMessage).toBe("Configuration file 'nodes/pve/qemu-server/7004.conf' does not exist");

    const template = await rejection(
      client.waitTask(await client.post<string>(vm(9000, '/snapshot'), { snapname: 'before' }), fast),
    );
    expect(template.pveMessage).toBe("you can't take a snapshot if it's a template");
    sim.addVm(7006, { scsi0: 'local:7006/vm-7006-disk-0.raw,size=8G' });
    const raw = await rejection(
      client.waitTask(await client.post<string>(vm(7006, '/snapshot'), { snapname: 'before' }), fast),
    );
    expect(raw.pveMessage).toBe('snapshot feature is not available');
    expect(raw.retryable).toBe(false);
    const badName = await rejection(client.post(vm(7006, '/snapshot'), { snapname: '1st', vmstate: 'no' }));
    expect(badName).toMatchObject({ kind: 'parameter' });
    expect(Object.keys(badName.errors ?? {}).sort()).toEqual(['snapname', 'vmstate']);
  });

  test('parameter verification failures carry per-field errors and are not retryable', async () => {
    const bad = await rejection(client.put(vm(9000, '/config'), { foo: 1, cores: 'two', name: 'a_b' }));
    expect(bad).toMatchObject({ kind: 'parameter' });
    expect(bad.retryable).toBe(false);
    expect(bad.errors).toEqual({
      foo: 'property is not defined in schema and the schema does not allow additional properties',
      cores: "type check ('integer') failed - got 'two'",
      name: 'invalid format - value does not look like a valid DNS name\n',
    });
    const missing = await rejection(client.post(vm(9000, '/clone'), {}));
    expect(missing.errors).toEqual({ newid: 'property is missing and it is not optional' });
    const vmidFormat = await rejection(client.post(vm(9000, '/clone'), { newid: 99 }));
    expect(vmidFormat.errors?.newid).toMatch(/valid VM ID|minimum value/);
  });
});

describe('transport, auth and TLS', () => {
  test('form encoding: booleans 0/1, sshkeys encoded before the form, undefined dropped', () => {
    const form = encodeParams({ full: true, purge: false, sshkeys: 'ssh-rsa A+/=', skip: undefined });
    expect(form.toString()).toBe('full=1&purge=0&sshkeys=ssh-rsa%2520A%252B%252F%253D');
  });

  test('a bad token gets 401 after a delay and is a permission error', async () => {
    await startSim({ authFailureDelayMs: 150 });
    const wrong = new ProxmoxClient({ url: sim.url, tokenId: sim.tokenId, tokenSecret: 'nope' });
    const started = Date.now();
    const err = await rejection(wrong.get('/version'));
    await wrong.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(err).toMatchObject({ kind: 'permission' });
    expect(err.status).toBe(401);
    expect(err.pveMessage).toBe('Authentication failed!');
  });

  test('596 from fault injection and a refused connection are retryable', async () => {
    await startSim({ faults: { errorRate: 1 } });
    const timeout = await rejection(client.get('/version'));
    expect(timeout).toMatchObject({ kind: 'timeout' });
    expect(timeout.retryable).toBe(true);
    const closed = new ProxmoxClient({ url: 'http://127.0.0.1:1', tokenId: 'a@pve!b', tokenSecret: 's' });
    const refused = await rejection(closed.get('/version'));
    await closed.close();
    expect(refused.kind).toBe('connection');
    expect(refused.retryable).toBe(true);
  });

  test('TLS: pinned fingerprint and CA trust succeed; a wrong pin or CA fails at once, naming both certificates', async () => {
    await startSim({ tls: true });
    const tokens = { url: sim.url, tokenId: sim.tokenId, tokenSecret: sim.tokenSecret };
    const pinned = new ProxmoxClient({ ...tokens, fingerprint: sim.fingerprint });
    expect(await pinned.get('/version')).toMatchObject({ release: '8.4' });
    await pinned.close();
    const trusted = new ProxmoxClient({ ...tokens, ca: sim.certificate });
    expect(await trusted.get('/version')).toMatchObject({ release: '8.4' });
    await trusted.close();

    const otherPin = Array.from({ length: 32 }, () => 'AB').join(':');
    const wrongPin = new ProxmoxClient({ ...tokens, fingerprint: otherPin });
    const mismatch = await rejection(wrongPin.get('/version'));
    expect(mismatch).toMatchObject({ kind: 'tls' });
    expect(mismatch.retryable).toBe(false);
    expect(mismatch.message).toContain(`expected ${otherPin} (proxmox.fingerprint), got ${sim.fingerprint}`);
    // The backend turns it into a permanent error: the activity fails at once instead of retrying for ever.
    const backend = new ProxmoxBackend({
      client: wrongPin,
      node: 'pve',
      vmidRange: { min: 7000, max: 7001 },
      snippetsDir: '/x',
    });
    const permanent = backend.allocate({ jobId: 'j', workflowId: 'j' }, 1);
    await expect(permanent).rejects.toBeInstanceOf(PermanentBackendError);
    await expect(permanent).rejects.toThrow(sim.fingerprint!);
    await wrongPin.close();

    const other = new PveSim({ tls: true });
    await other.listen();
    const otherCa = new ProxmoxClient({ ...tokens, ca: other.certificate, caFile: '/etc/agentlab/pve-root-ca.pem' });
    const untrustedCa = await rejection(otherCa.get('/version'));
    expect(untrustedCa).toMatchObject({ kind: 'tls' });
    expect(untrustedCa.message).toMatch(
      new RegExp(
        `not trusted by the CA in /etc/agentlab/pve-root-ca.pem \\(.+\\); its fingerprint is ${sim.fingerprint}`,
      ),
    );
    await otherCa.close();
    await other.close();
    const untrusted = new ProxmoxClient(tokens);
    const selfSigned = await rejection(untrusted.get('/version'));
    expect(selfSigned).toMatchObject({ kind: 'tls' });
    expect(selfSigned.message).toContain("not trusted by this host's trusted CAs");
    await untrusted.close();
  });

  test('storage lock contention fails the clone task with the catalogued text', async () => {
    await startSim({ faults: { lockContention: 1 } });
    const upid = await client.post<string>(vm(9000, '/clone'), { newid: 7002 });
    const err = await rejection(client.waitTask(upid, fast));
    expect(err).toMatchObject({ kind: 'lock-timeout' });
    expect(err.pveMessage).toBe(
      "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
    );
    expect(sim.vm(7002)).toBeUndefined();
  });
});

describe('error catalog', () => {
  type Entry = {
    id: string;
    http_status: number;
    status_line?: string;
    task_exitstatus?: string;
    body_pve_http_server_lt_5_2?: { errors?: Record<string, string> };
  };
  const catalog = JSON.parse(readFileSync(simulatorData('error-catalog.json'), 'utf8')) as {
    errors: Entry[];
  };
  const expected: Record<string, [PveErrorKind, boolean]> = {
    'param-missing': ['parameter', false],
    'param-unknown': ['parameter', false],
    'param-bool': ['parameter', false],
    'param-int': ['parameter', false],
    'param-vmid-format': ['parameter', false],
    'param-dns-name': ['parameter', false],
    'nextid-taken': ['parameter', false],
    'vm-config-missing': ['not-found', false],
    'vm-missing-check-running': ['not-found', false],
    'auth-bad-token': ['permission', false],
    'perm-denied': ['permission', false],
    'pool-missing': ['permission', false],
    'delete-body': ['other', false],
    'clone-target-exists': ['other', false],
    'clone-linked-not-template': ['other', false],
    'clone-source-locked': ['locked', true],
    'clone-lock-timeout': ['lock-timeout', true],
    'clone-storage-lock-timeout': ['lock-timeout', true],
    'start-running': ['already-running', false],
    'start-template': ['other', false],
    'start-locked': ['locked', true],
    'destroy-running': ['other', false],
    'destroy-locked': ['locked', true],
    'config-locked': ['locked', true],
    'config-flock-timeout': ['lock-timeout', true],
    'agent-not-configured': ['other', false],
    'agent-vm-stopped': ['other', false],
    'agent-not-running': ['agent-not-running', true],
    'agent-cmd-timeout': ['agent-not-running', true],
    'snapshot-reserved': ['other', false],
    'snapshot-exists': ['snapshot-exists', false],
    'snapshot-missing': ['snapshot-missing', false],
    'snapshot-template': ['other', false],
    'snapshot-unsupported': ['other', false],
    'task-unknown': ['not-found', false],
    'task-bad-upid': ['parameter', false],
    'proxy-timeout': ['timeout', true],
  };

  test.each(Object.entries(expected))('%s', (id, [kind, retryable]) => {
    const entry = catalog.errors.find((e) => e.id === id);
    expect(entry).toBeDefined();
    const err =
      entry!.http_status === 200
        ? classifyPveError(entry!.task_exitstatus!.replace(/^start: "|".*$/g, ''))
        : classifyPveError(entry!.status_line!.replace(/^\d+ /, ''), {
            status: entry!.http_status,
            errors: entry!.body_pve_http_server_lt_5_2?.errors,
          });
    expect(err.kind).toBe(kind);
    expect(err.retryable).toBe(retryable);
  });
});
