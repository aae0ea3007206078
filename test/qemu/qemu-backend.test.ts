// The qemu backend for real: a job in a QEMU VM booted from the guest image (TCG here), through real cloud-init
// and the image's own runner, in a network the test builds (test/support/netns.ts). The VM clones its repository
// from a git server on the "Internet", reaches the Internet and the guest API and nothing else (the host's other
// ports, a private-range host, the metadata address), and its patch comes back. Mid-job the worker is SIGKILLed
// and started again: it finds the VM by its pidfile and starts no second one; the job still ends COMPLETED, and
// no QEMU process, tap device or VM file is left.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { createExampleRepo } from '../../common/example-repo';
import { HOST_UPLINK, OUTSIDE_HOSTS, TestNetwork } from '../support/netns';
import { eventually, sleep } from '../support/stack';

const GATEWAY = '10.78.0.1';
const JOB = 'qemu-job';

/** What the agent runs inside the VM: each target probed over HTTP, one `ESCAPE {json}` line each. */
const PROBE = `const http = require('http');
const targets = ${JSON.stringify([
  { name: 'guestApi', host: GATEWAY, port: 8844, path: '/healthz' },
  { name: 'internet', host: OUTSIDE_HOSTS.internet, port: 80 },
  { name: 'lan10', host: OUTSIDE_HOSTS.lan10, port: 80 },
  { name: 'metadata', host: OUTSIDE_HOSTS.metadata, port: 80 },
  { name: 'hostGatewayOtherPort', host: GATEWAY, port: 9999 },
  { name: 'hostUplinkOtherPort', host: HOST_UPLINK, port: 9999 },
])};
const probe = (t) => new Promise((resolve) => {
  const req = http.get({ host: t.host, port: t.port, path: t.path || '/', timeout: 5000 }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve({ name: t.name, ok: true, status: res.statusCode, body }));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => resolve({ name: t.name, ok: false, error: e.code || e.message }));
});
Promise.all(targets.map(probe)).then((results) => {
  for (const r of results) console.log('ESCAPE ' + JSON.stringify(r));
  console.log('ESCAPE-DONE');
});
`;

interface ProbeResult {
  name: string;
  ok: boolean;
  status?: number;
  body?: string;
  error?: string;
}

describe('qemu backend', () => {
  const net = new TestNetwork();
  const home = mkdtempSync(join(tmpdir(), 'agentlab-qemu-backend-'));
  const dataDir = join(home, 'data');
  const configPath = join(home, 'config.yaml');
  const env = { ...process.env, AGENTLAB_CONFIG: configPath };
  const cli = (args: string[]) => net.cli(env, args);
  const show = async (jobId: string) => JSON.parse((await cli(['job', 'show', jobId, '--json'])).stdout);
  /** Host pids of QEMU processes of this test's VMs (their command lines name the data dir). */
  const qemuPids = async () =>
    (await execa('pgrep', ['-f', `qemu-system-x86_64 .*${join(dataDir, 'qemu')}/`], { reject: false })).stdout
      .split('\n')
      .filter(Boolean);

  beforeAll(async () => {
    await net.create();
    // The job's repository, served over git:// from the "Internet": what a remote repository is to a VM.
    const repos = join(home, 'repos');
    const repo = await createExampleRepo(repos);
    writeFileSync(join(repo, 'probe.js'), PROBE);
    const git = (...args: string[]) =>
      execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: repo });
    await git('add', 'probe.js');
    await git('commit', '-qm', 'probe');
    // git-daemon itself, not `git daemon`: git would run it as a child that outlives the kill at the end.
    const gitDaemon = join((await execa('git', ['--exec-path'])).stdout, 'git-daemon');
    net.spawnIn(net.outside, gitDaemon, [
      ...['--reuseaddr', '--export-all', `--base-path=${repos}`],
      ...[`--listen=${OUTSIDE_HOSTS.internet}`, '--port=9418', repos],
    ]);
    net.serveHello(net.outside, 80); // the Internet, the LAN host and the metadata address all answer
    net.serveHello(net.host, 9999); // a host service VMs must not reach
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'qemuhost',
        dataDir,
        temporal: { address: '127.0.0.1:7233' },
        vmidRange: { min: 7100, max: 7199 },
        worker: { backends: ['qemu'], shutdownGraceTime: '2s' },
        local: { subnet: '10.78.0.0/24', dns: { upstreams: [OUTSIDE_HOSTS.internet] } },
        profiles: [
          {
            name: 'qemu-test',
            backend: 'qemu',
            ttl: '20m',
            resources: { cores: 2, memoryMb: 1024, diskGb: 2 },
            // TCG on a shared 2-core machine: boots take one to two minutes.
            provisioning: { attempts: 1, bootTimeout: '6m', bootstrapTimeout: '6m' },
          },
        ],
      }),
    );
    await net.startHostStack(env, GATEWAY);
  }, 180_000);

  afterAll(async () => {
    await net.destroy();
    // A failed run must not leave a VM behind: the worker that would have destroyed it is gone.
    for (const pid of await qemuPids()) process.kill(Number(pid), 'SIGKILL');
    // A 600 MB base image is shared, but each run's overlay, repository and Temporal data are its own.
    if (!process.env.AGENTLAB_KEEP_TEST_DIRS) rmSync(home, { recursive: true, force: true });
  });

  test('a job runs in a QEMU VM through a worker SIGKILL; it reaches only the Internet and the guest API', async () => {
    const startedMs = Date.now();
    const agent = `printf '\\nAgent note: qemu\\n' >> README.md && node probe.js && sleep 25`;
    const started = await cli(
      ['job', 'run', '--profile', 'qemu-test', '--repo', `git://${OUTSIDE_HOSTS.internet}/hello-repo`].concat([
        '--task',
        'note',
        '--id',
        JOB,
        '--detach',
        '--agent-command',
        agent,
      ]),
    );
    expect(started).toMatchObject({ code: 0 });

    // The agent has run its probes: the VM booted, its runner claimed the job and cloned the repository.
    const agentLog = join(dataDir, 'jobs', JOB, 'agent.log');
    await eventually(
      'the agent to finish its probes',
      async () => existsSync(agentLog) && readFileSync(agentLog, 'utf8').includes('ESCAPE-DONE'),
      420_000,
    );
    const runningMs = Date.now() - startedMs;
    const running = await show(JOB);
    // The clean snapshot was taken of the running disk (QMP), as every sandbox gets one after first boot.
    expect(running).toMatchObject({
      status: 'RUNNING',
      sandbox: { state: 'RUNNING', address: '10.78.0.2', cleanSnapshot: true },
    });
    const vmid = running.sandbox.vmid as number;
    const vmDir = join(dataDir, 'qemu', String(vmid));
    expect(await qemuPids()).toHaveLength(1);
    // The claim spent the token: the seed the VM keeps no longer carries it.
    await eventually(
      'the bootstrap to leave the seed',
      async () => !readFileSync(join(vmDir, 'seed.iso'), 'latin1').includes('controllerUrl'),
    );

    // The worker dies mid-job and comes back: it must find the VM, not start another.
    const pids = (await net.execIn(net.host, 'pgrep', ['-f', 'dist/worker/main.js'])).stdout.split('\n');
    for (const pid of pids.filter(Boolean)) {
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`AGENTLAB_CONFIG=${configPath}`)) {
        process.kill(Number(pid), 'SIGKILL');
      }
    }
    await sleep(2000);
    await net.startWorker(env, GATEWAY);
    expect(await qemuPids()).toHaveLength(1);

    const final = await eventually(
      'the job to end and its VM to be destroyed',
      async () => {
        const doc = await show(JOB);
        return doc.status !== 'RUNNING' && doc.sandbox?.state === 'DESTROYED' ? doc : undefined;
      },
      240_000,
    );
    expect(final).toMatchObject({ status: 'COMPLETED', sandbox: { state: 'DESTROYED', vmid } });
    const patch = readFileSync(join(dataDir, 'jobs', JOB, 'artifacts', 'changes.patch'), 'utf8');
    expect(patch).toContain('+Agent note: qemu');
    expect(patch).toContain('+++ b/README.md');

    const results = new Map<string, ProbeResult>();
    for (const line of readFileSync(agentLog, 'utf8').split('\n')) {
      if (line.startsWith('ESCAPE {')) {
        const result = JSON.parse(line.slice('ESCAPE '.length)) as ProbeResult;
        results.set(result.name, result);
      }
    }
    expect(results.get('guestApi')).toMatchObject({ ok: true, status: 200 });
    expect(results.get('internet')).toMatchObject({ ok: true, body: `hello from ${OUTSIDE_HOSTS.internet}` });
    for (const blocked of ['lan10', 'metadata', 'hostGatewayOtherPort', 'hostUplinkOtherPort']) {
      expect({ blocked, ...results.get(blocked) }).toMatchObject({ blocked, ok: false });
    }
    // ...and the blocked ones were up: from the host side they answer.
    const lan = await net.execIn(net.host, 'curl', ['-s', '--max-time', '3', `http://${OUTSIDE_HOSTS.lan10}/`]);
    expect(lan.stdout).toBe(`hello from ${OUTSIDE_HOSTS.lan10}`);

    // Exactly one VM existed, and nothing of it is left: no QEMU, no tap, no file.
    const journal = readFileSync(join(dataDir, 'qemu', 'journal.ndjson'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { op: string; jobId: string });
    expect(journal.map((e) => [e.op, e.jobId])).toEqual([
      ['clone', JOB],
      ['destroy', JOB],
    ]);
    expect(await qemuPids()).toEqual([]);
    expect((await net.execIn(net.host, 'ip', ['link', 'show'])).stdout).not.toContain(`alvq${vmid}`);
    expect(existsSync(vmDir)).toBe(false);
    expect(readdirSync(join(dataDir, 'qemu')).filter((e) => /^\d+$/.test(e))).toEqual([]);
    const { accelerator } = JSON.parse(readFileSync(join(dataDir, 'qemu', 'accelerator.json'), 'utf8'));
    const figures = {
      figure: 'qemu-job',
      accelerator,
      toRunningSeconds: runningMs / 1000,
      totalSeconds: (Date.now() - startedMs) / 1000,
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  }, 900_000);
});
