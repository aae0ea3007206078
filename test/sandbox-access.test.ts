// `sandbox ssh` on the Proxmox simulator: the operators' keys reach the guest through cloud-init, the CLI
// runs ssh to the guest's address, the access is on the timeline, and a sandbox that is not up is refused.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { recordAccessUpdate } from '../common/contract';
import { recordHistoryIfAsked } from './support/histories';
import { startPveStack, type PveStack } from './support/pve-stack';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAgentlabTestKeyAgentlabTestKeyAgentlab alice@laptop';
const IDENTITY = '/home/alice/.ssh/id_ed25519';

let pve: PveStack;
beforeAll(async () => {
  pve = await startPveStack({
    sim: { latency: { bootMs: 100 } },
    profile: { ssh: { authorizedKeys: [KEY] } },
    config: { ssh: { identityFile: IDENTITY } },
  });
});
afterAll(() => pve?.close());

test('sandbox ssh: the key in user-data, the ssh command line, the timeline, refused when STOPPED or local', async () => {
  const id = 'sbx-ssh';
  const created = await pve.stack.cli(['sandbox', 'new', '--profile', 'yolo-ephemeral', '--id', id, '--json']);
  expect(created.code).toBe(0);
  const { vmid, address } = await pve.stack.describe(id);

  // cloud-init gives the template's `agent` user the operator's key; the distro's default user stays.
  const userData = YAML.parse(readFileSync(join(pve.snippetsDir, `agentlab-${vmid}.yaml`), 'utf8')) as {
    users?: unknown[];
  };
  expect(userData.users).toEqual(['default', { name: 'agent', ssh_authorized_keys: [KEY] }]);

  const expected = [
    'ssh',
    ...['-o', 'StrictHostKeyChecking=accept-new'],
    ...['-o', `UserKnownHostsFile=${join(pve.stack.dataDir, 'known_hosts')}`],
    ...['-o', `HostKeyAlias=agentlab-${id}`],
    ...['-i', IDENTITY],
    `agent@${address}`,
    ...['cat', '/etc/hostname'],
  ];
  const dryRun = await pve.stack.cli(['sandbox', 'ssh', String(vmid), '--dry-run', '--', 'cat', '/etc/hostname']);
  expect(dryRun).toMatchObject({ code: 0, stdout: expected.join(' ') + '\n' });

  // The real thing runs ssh (here a stand-in on PATH that prints its arguments) and passes its exit code on.
  const bin = join(pve.stack.home, 'fake-ssh');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'ssh'), '#!/bin/sh\necho "$@"\nexit 7\n');
  chmodSync(join(bin, 'ssh'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}` };
  const ran = await pve.stack.cli(['sandbox', 'ssh', id, '--', 'cat', '/etc/hostname'], { env });
  expect(ran).toMatchObject({ code: 7, stdout: expected.slice(1).join(' ') + '\n' });
  const accessed = (await pve.stack.describe(id)).timeline.filter((t) => t.access);
  expect(accessed).toEqual([
    expect.objectContaining({
      state: 'RUNNING',
      note: `ssh by ${userInfo().username}@${hostname()}`,
      access: { kind: 'ssh', user: userInfo().username, host: hostname(), node: pve.stack.node },
    }),
  ]);
  // A local sandbox's way in is no way into a VM.
  const shell = await pve.stack.cli(['sandbox', 'shell', id, '--', 'true']);
  expect(shell.code).toBe(1);
  expect(shell.stderr).toContain(
    `sandbox of job ${id} runs on the proxmox backend: \`sandbox shell\` enters local sandboxes only; use \`agentlab sandbox ssh ${id}\``,
  );

  expect((await pve.stack.cli(['sandbox', 'stop', id])).code).toBe(0);
  const refusal = 'cannot ssh sandbox in state STOPPED: ssh is allowed only in READY, RUNNING';
  for (const args of [['--dry-run'], []]) {
    const stopped = await pve.stack.cli(['sandbox', 'ssh', id, ...args, '--', 'true'], { env });
    expect({ args, code: stopped.code, stdout: stopped.stdout }).toEqual({ args, code: 1, stdout: '' });
    expect(stopped.stderr).toContain(refusal);
  }
  // A client that skips the CLI meets the same rule in the workflow's validator, and nothing is recorded.
  const direct = pve.stack.client.workflow
    .getHandle(id)
    .executeUpdate(recordAccessUpdate, { args: [{ kind: 'ssh', user: 'mallory', host: 'elsewhere', node: 'x' }] });
  await expect(direct).rejects.toMatchObject({ cause: { message: refusal } });
  expect((await pve.stack.describe(id)).timeline.filter((t) => t.access)).toHaveLength(1);

  await recordHistoryIfAsked('sbx-operator-access', id);
  expect((await pve.stack.cli(['sandbox', 'destroy', id, '--yes'])).code).toBe(0);
  await pve.stack.waitForClose(id);
});
