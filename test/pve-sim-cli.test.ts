// `npm run pve-sim` for other clients: a flag per latency, volume step and fault, --nodes, a JSONL request log,
// and with --tls the certificate written to a CA file a client can trust.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import execa from 'execa';
import { ProxmoxClient } from '../backends/proxmox/client';
import { packageRoot } from '../common/paths';
import { REALISTIC_LATENCIES } from '../simulators/proxmox/state';

const SCRIPT = join(packageRoot(), 'dist', 'scripts', 'pve-sim.js');
let dir: string;
let child: ChildProcess | undefined;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'agentlab-pve-sim-cli-'))));
afterEach(() => {
  child?.kill('SIGTERM');
  child = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the simulator and resolves with the JSON line it prints once listening. */
function startSim(args: string[]): Promise<Record<string, unknown>> {
  child = spawn(process.execPath, [SCRIPT, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as Record<string, unknown>));
    child!.once('exit', (code) => reject(new Error(`pve-sim exited ${code}`)));
  });
}

test('three nodes over TLS, trusted through the CA file it wrote; every request in the JSONL log', async () => {
  const caFile = join(dir, 'ca.pem');
  const requestLog = join(dir, 'requests.jsonl');
  const info = await startSim([
    ...['--nodes', '3', '--tls', '--ca-file', caFile, '--request-log', requestLog, '--fast'],
    ...['--snippets-dir', join(dir, 'snippets'), '--boot-ms', '50', '--lvmthin-clone-image-ms', '7'],
    ...['--error-rate', '0', '--lock-contention', '0'],
  ]);
  expect(info).toMatchObject({
    nodes: ['pve1', 'pve2', 'pve3'],
    caFile,
    requestLog,
    url: expect.stringMatching(/^https:/),
  });
  expect(readFileSync(caFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
  const client = new ProxmoxClient({
    url: info.url as string,
    tokenId: info.tokenId as string,
    tokenSecret: info.tokenSecret as string,
    caFile,
  });
  const nodes = await client.get<{ node: string; ssl_fingerprint: string }[]>('/nodes');
  expect(nodes.map((n) => [n.node, n.ssl_fingerprint])).toEqual(
    ['pve1', 'pve2', 'pve3'].map((n) => [n, info.fingerprint]),
  );
  await client.get('/cluster/resources', { type: 'vm' });
  await client.close();
  const logged = readFileSync(requestLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(logged).toEqual([
    expect.objectContaining({ method: 'GET', path: '/nodes', status: 200, user: info.tokenId }),
    expect.objectContaining({ method: 'GET', path: '/cluster/resources', query: 'type=vm', status: 200 }),
  ]);
  expect(logged[0]).toEqual({
    time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    method: 'GET',
    path: '/nodes',
    status: 200,
    ms: expect.any(Number),
    user: info.tokenId,
  });
});

test('--help lists a flag for every latency, volume step and fault; a bad value is refused naming its flag', async () => {
  const help = await execa(process.execPath, [SCRIPT, '--help']);
  const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const flags = [
    ...Object.keys(REALISTIC_LATENCIES)
      .filter((k) => k !== 'storageSteps')
      .map(kebab),
    ...['lvmthin', 'zfspool', 'dir'].flatMap((t) =>
      ['clone-image-ms', 'alloc-image-ms', 'free-image-ms'].map((s) => `${t}-${s}`),
    ),
    ...['error-rate', 'lock-contention', 'extra-latency-ms', 'steal-clone-targets', 'nodes', 'request-log', 'ca-file'],
  ];
  for (const flag of flags)
    expect({ flag, listed: help.stdout.includes(`--${flag} `) }).toEqual({ flag, listed: true });

  for (const [args, message] of [
    [['--error-rate', '1.5'], "--error-rate: expected a number from 0 to 1, got '1.5'"],
    [['--boot-ms', 'soon'], "--boot-ms: expected an integer 0 or more, got 'soon'"],
    [['--nodes', '0'], "--nodes: expected an integer from 1 to 32, got '0'"],
    [['--node-names', 'a_b'], "--node-names: 'a_b' is not a valid node name"],
  ] as const) {
    const refused = await execa(process.execPath, [SCRIPT, ...args], { reject: false });
    expect({ args, code: refused.exitCode, stderr: refused.stderr }).toEqual({
      args,
      code: 2,
      stderr: `pve-sim: ${message}`,
    });
  }
});
