// The local backend's sandbox, in a network the test builds itself: a job runs end to end; an agent
// that tries to escape reaches only the Internet and the guest API; nothing is left afterwards.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { SANDBOX_AGENT } from '../backends/local/host-view';
import { AGENT_KINDS, AGENT_PACKAGES } from '../common/agents';
import { createExampleRepo } from '../common/example-repo';
import { HOST_UPLINK, OUTSIDE_HOSTS, TestNetwork } from './support/netns';
import { SCRIPTED_AGENT, eventually, sleep } from './support/stack';

const GATEWAY = '10.78.0.1';
const ESCAPE_AGENT = join(__dirname, 'fixtures', 'agents', 'escape-agent.js');
const DNS_SERVER = join(__dirname, 'fixtures', 'dns-server.js');

interface ProbeResult {
  name: string;
  ok?: boolean;
  error?: string;
  body?: string;
  [key: string]: unknown;
}

describe('local backend isolation', () => {
  const net = new TestNetwork();
  const home = mkdtempSync(join(tmpdir(), 'agentlab-iso-'));
  const dataDir = join(home, 'data');
  const repos = join(home, 'repos');
  const configPath = join(home, 'config.yaml');
  const env = { ...process.env, AGENTLAB_CONFIG: configPath };
  let repo: string;
  let peerRepo: string;
  /** Files on the host no sandbox may list or read, and the directories the test made for them. */
  const markers: string[] = [];
  const madeDirs: string[] = [];
  const placeMarker = (dir: string, mode = 0o644): string => {
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      madeDirs.push(dir);
    }
    const file = join(dir, `agentlab-marker-${net.id}`);
    writeFileSync(file, `host secret in ${dir}\n`, { mode });
    markers.push(file);
    return file;
  };

  const cli = (args: string[]) => net.cli(env, args);
  const show = async (jobId: string) => JSON.parse((await cli(['job', 'show', jobId, '--json'])).stdout);

  beforeAll(async () => {
    await net.create();
    mkdirSync(repos, { recursive: true });
    // The job's repository: anywhere (no configured roots), with uncommitted work the job must not see.
    repo = await createExampleRepo(repos);
    writeFileSync(join(repo, 'README.md'), 'uncommitted edit\n');
    writeFileSync(join(repo, 'dirty.txt'), 'untracked\n');
    peerRepo = await createExampleRepo(mkdtempSync(join(home, 'peer-')));
    for (const dir of ['/home', '/root', '/srv', '/opt', '/var/tmp', '/tmp', '/mnt', '/media']) placeMarker(dir);
    placeMarker(`/agentlab-made-up-data-${net.id}`);
    placeMarker(repos); // beside the job's repository
    placeMarker('/etc', 0o600); // readable by root only, as shadow and private keys are
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'isohost',
        dataDir,
        temporal: { address: '127.0.0.1:7233' },
        vmidRange: { min: 7100, max: 7199 },
        local: {
          isolation: 'namespaces',
          subnet: '10.78.0.0/24',
          dns: { upstreams: [OUTSIDE_HOSTS.internet] },
        },
        profiles: [{ name: 'local', backend: 'local', ttl: '10m', provisioning: { attempts: 1, bootTimeout: '20s' } }],
      }),
    );
    await net.startHostStack(env, GATEWAY);
    net.serveHello(net.outside, 80);
    // The Internet's resolver, and a LAN resolver sandboxes must not ask directly; both know the name.
    for (const resolver of [OUTSIDE_HOSTS.internet, OUTSIDE_HOSTS.lan10]) {
      net.spawnIn(net.outside, process.execPath, [
        DNS_SERVER,
        resolver,
        `internet.example.test=${OUTSIDE_HOSTS.internet}`,
      ]);
    }
    net.serveHello(net.host, 9999); // a host service sandboxes must not reach
  });

  afterAll(async () => {
    for (const file of markers) rmSync(file, { force: true });
    for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
    await net.destroy();
  });

  test('an agent edits its checkout as the unprivileged agent user, and the patch comes back', async () => {
    const run = await cli([
      ...['job', 'run', '--repo', peerRepo, '--task', 'greet', '--id', 'job-edit', '--json'],
      ...['--agent-command', `${SCRIPTED_AGENT}; id -u > whoami.txt`],
    ]);
    expect(run.code).toBe(0);
    const patch = readFileSync(join(dataDir, 'jobs', 'job-edit', 'artifacts', 'changes.patch'), 'utf8');
    expect(patch).toContain('+Agent note: greet');
    expect(patch).toContain('+++ b/NOTES.md');
    expect(patch).toMatch(new RegExp(`\\+\\+\\+ b/whoami\\.txt\\n@@ -0,0 \\+1 @@\\n\\+${SANDBOX_AGENT.uid}\\n`));
  });

  test('a workspace is bound at /workspace for the agent user, and the next sandbox finds what it wrote', async () => {
    expect((await cli(['workspace', 'create', 'iso-ws', '--size', '1G'])).code).toBe(0);
    const job = (id: string, agentCommand: string) =>
      cli([
        ...['job', 'run', '--repo', peerRepo, '--task', 't', '--id', id, '--workspace', 'iso-ws'],
        ...['--agent-command', agentCommand],
      ]);
    const first = await job('iso-ws-1', 'test "$AGENTLAB_WORKSPACE" = /workspace && id -u > /workspace/writer');
    expect(first.code).toBe(0);
    // The next sandbox: the note is there, the checkout in /workspace/repo, and the host folder only there.
    const second = await job(
      'iso-ws-2',
      'test "$(cat /workspace/writer)" = "$(id -u)" && test "$PWD" = /workspace/repo && test -d .git && ' +
        `! ls ${JSON.stringify(dataDir)} 2>/dev/null`,
    );
    expect(second.code).toBe(0);
    const hostFolder = join(dataDir, 'workspaces', 'iso-ws', 'data');
    expect(readFileSync(join(hostFolder, 'writer'), 'utf8')).toBe(`${SANDBOX_AGENT.uid}\n`);
    const shown = JSON.parse((await cli(['workspace', 'show', 'iso-ws', '--json'])).stdout);
    expect(shown.attachments.map((a: { jobId: string }) => a.jobId)).toEqual(['iso-ws-1', 'iso-ws-2']);
    expect((await cli(['workspace', 'destroy', 'iso-ws', '--yes'])).code).toBe(0);
    expect(existsSync(hostFolder)).toBe(false);
  });

  test('a job runs end to end, an escaping agent reaches only the Internet and the guest API, nothing is left', async () => {
    // A peer sandbox worth attacking: it serves HTTP and keeps a marker in its secrets tmpfs.
    const peerPlan = {
      secretsDir: '/run/agentlab/secrets',
      hostDataDir: dataDir,
      writeMarker: 'peer-marker',
      serve: 8080,
      serveSeconds: 120,
    };
    const peerStart = await cli([
      'job',
      'run',
      '--repo',
      peerRepo,
      '--task',
      JSON.stringify(peerPlan),
      '--id',
      'job-peer',
      '--detach',
      '--agent-command',
      `node ${ESCAPE_AGENT}`,
    ]);
    expect(peerStart.code).toBe(0);
    const peerLog = join(dataDir, 'jobs', 'job-peer', 'agent.log');
    await eventually(
      'the peer to serve',
      async () => existsSync(peerLog) && readFileSync(peerLog, 'utf8').includes('serving on 8080'),
    );
    const peer = await show('job-peer');
    const peerAddress: string = peer.sandbox.address;
    expect(peerAddress).toMatch(/^10\.78\.0\.\d+$/);

    const plan = {
      secretsDir: '/run/agentlab/secrets',
      hostDataDir: dataDir,
      peerMarker: 'peer-marker',
      tools: true,
      hidden: [
        ...markers,
        join(peerRepo, 'README.md'), // another job's repository
        join(dataDir, 'sandboxes', String(peer.sandbox.vmid), 'repo.git', 'HEAD'), // and the host's copy of it
        '/etc/shadow',
      ],
      targets: [
        { name: 'lan10', host: OUTSIDE_HOSTS.lan10, port: 80 },
        { name: 'lan192', host: OUTSIDE_HOSTS.lan192, port: 80 },
        { name: 'metadata', host: OUTSIDE_HOSTS.metadata, port: 80, path: '/latest/meta-data/' },
        { name: 'peer', host: peerAddress, port: 8080 },
        { name: 'hostGatewayOtherPort', host: GATEWAY, port: 9999 },
        { name: 'hostUplinkOtherPort', host: HOST_UPLINK, port: 9999 },
        { name: 'guestApi', host: GATEWAY, port: 8844, path: '/healthz' },
        { name: 'internet', host: OUTSIDE_HOSTS.internet, port: 80 },
        // By name: resolv.conf → the gateway's forwarder → the configured upstream.
        { name: 'internetByName', host: 'internet.example.test', port: 80 },
        { name: 'dnsViaGateway', dnsServer: GATEWAY, resolve: 'internet.example.test' },
        { name: 'dnsViaLan', dnsServer: OUTSIDE_HOSTS.lan10, resolve: 'internet.example.test' },
        { name: 'dnsTcpViaGateway', dnsServer: GATEWAY, resolve: 'internet.example.test', tcp: true },
        { name: 'dnsTcpViaLan', dnsServer: OUTSIDE_HOSTS.lan10, resolve: 'internet.example.test', tcp: true },
      ],
    };
    const run = await cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      JSON.stringify(plan),
      '--id',
      'job-escape',
      '--json',
      '--agent-command',
      `node ${ESCAPE_AGENT}`,
    ]);
    expect(run.stderr).toContain('RUNNING');
    expect(run.stderr).toMatch(/has uncommitted changes in 2 file\(s\) that the job will not see/);
    expect(run.code).toBe(0);
    const escape = JSON.parse(run.stdout);
    expect(escape).toMatchObject({ status: 'COMPLETED', sandbox: { state: 'DESTROYED' } });

    const results = new Map<string, ProbeResult>();
    for (const line of readFileSync(join(dataDir, 'jobs', 'job-escape', 'agent.log'), 'utf8').split('\n')) {
      if (line.startsWith('ESCAPE ')) {
        const result = JSON.parse(line.slice('ESCAPE '.length)) as ProbeResult;
        results.set(result.name, result);
      }
    }
    // Each outcome on its own: only the Internet and the guest API answer.
    expect(results.get('internet')).toMatchObject({ ok: true, body: `hello from ${OUTSIDE_HOSTS.internet}` });
    expect(results.get('guestApi')).toMatchObject({ ok: true, status: 200 });
    expect(results.get('lan10')).toMatchObject({ ok: false });
    expect(results.get('lan192')).toMatchObject({ ok: false });
    expect(results.get('metadata')).toMatchObject({ ok: false });
    expect(results.get('peer')).toMatchObject({ ok: false });
    expect(results.get('hostGatewayOtherPort')).toMatchObject({ ok: false });
    expect(results.get('hostUplinkOtherPort')).toMatchObject({ ok: false });
    // DNS works, through the gateway's forwarder only.
    expect(results.get('internetByName')).toMatchObject({ ok: true, body: `hello from ${OUTSIDE_HOSTS.internet}` });
    expect(results.get('dnsViaGateway')).toMatchObject({ ok: true, addresses: [OUTSIDE_HOSTS.internet] });
    expect(results.get('dnsViaLan')).toMatchObject({ ok: false });
    // Over TCP too (what resolvers fall back to for answers too large for UDP).
    expect(results.get('dnsTcpViaGateway')).toMatchObject({ ok: true, addresses: [OUTSIDE_HOSTS.internet] });
    expect(results.get('dnsTcpViaLan')).toMatchObject({ ok: false });
    // The peer really was up and serving (from the host side), so its failure above is the policy.
    const fromHost = await net.execIn(net.host, 'curl', ['-s', '--max-time', '3', `http://${peerAddress}:8080/`]);
    expect(fromHost.stdout).toBe('peer sandbox');

    // Filesystem: secrets on a private tmpfs, host read-only, the host's agentlab data hidden.
    const fsChecks = results.get('fs')!;
    expect(fsChecks.secretsFsType).toBe('tmpfs');
    // The agent runs as an unprivileged user: its own directory, but not the runner's claim or processes.
    expect(fsChecks.uid).toBe(SANDBOX_AGENT.uid);
    expect(fsChecks.ownDirEntries).toEqual(expect.arrayContaining(['home', 'task.txt']));
    expect(fsChecks.runnerSecretsListed).toBe('EACCES');
    expect(fsChecks.claimRead).toBe('EACCES');
    expect(fsChecks.signalInit).toBe('EPERM');
    expect(fsChecks.peerMarkerVisible).toBe(false);
    expect(fsChecks.hostWritable).toBe('EROFS');
    expect(fsChecks.dataDirEntries).toBe('ENOENT');
    expect(fsChecks.hostname).toBe(`sandbox-${escape.sandbox.vmid}`);
    expect(fsChecks.resolvConf).toBe(`nameserver ${GATEWAY}\n`);

    // The sandbox sees an allowlist of the host: none of the markers, no other repository, no private file.
    const hidden = results.get('hidden')!.files as { file: string; listed: boolean; read: string }[];
    expect(hidden.map((h) => h.file)).toEqual(plan.hidden);
    for (const check of hidden) {
      // /etc itself is shown; what only root may read there is an empty file in the sandbox.
      const expected = check.file.startsWith('/etc/') ? { readable: false } : { listed: false, readable: false };
      expect({ file: check.file, listed: check.listed, readable: check.read === 'content' }).toMatchObject({
        file: check.file,
        ...expected,
      });
    }
    // …while the agent still has its shell, git and node, and its checkout is the committed state.
    const committed = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout;
    expect(results.get('tools')).toMatchObject({
      sh: 'shell works',
      git: expect.stringMatching(/^git version /),
      node: '42',
      repoHead: committed,
      // The worker's Node (the test's, wherever it is installed), not whatever /usr/bin holds.
      nodeVersion: process.version,
      self: { nodeVersion: process.version, uid: SANDBOX_AGENT.uid },
    });
    const versions = results.get('tools')!.agents as string[];
    AGENT_KINDS.forEach((kind, i) => expect(versions[i]).toContain(AGENT_PACKAGES[kind].version));
    expect(results.get('tools')!.agentsDirWrite).toBe('EROFS');
    expect(results.get('tools')!.repoFiles).toContain('README.md');
    expect(results.get('tools')!.repoFiles).not.toContain('dirty.txt');
    expect(results.get('tools')!.readme).toBe(
      (await execa('git', ['-C', repo, 'show', 'HEAD:README.md'])).stdout + '\n',
    );

    // Tear the peer down too, then nothing of either sandbox may remain.
    expect((await cli(['sandbox', 'destroy', 'job-peer', '--yes'])).code).toBe(0);
    await eventually('the peer to be destroyed', async () => (await show('job-peer')).sandbox.state === 'DESTROYED');
    for (const vmid of [escape.sandbox.vmid, peer.sandbox.vmid]) {
      const netnsList = (await net.execIn(net.host, 'ip', ['netns', 'list'])).stdout;
      expect(netnsList).not.toContain(`agentlab-${vmid}`);
      expect((await net.execIn(net.host, 'ip', ['link', 'show'])).stdout).not.toContain(`alv${vmid}`);
      expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(`agentlab-${vmid}`);
      expect(existsSync(join(dataDir, 'sandboxes', String(vmid)))).toBe(false);
      const processes = (await net.execIn(net.host, 'pgrep', ['-f', join(dataDir, 'sandboxes', String(vmid))])).stdout;
      expect(processes).toBe('');
      expect(existsSync(`/sys/fs/cgroup/agentlab/sandbox-${vmid}`)).toBe(false);
    }
    await sleep(0);
  });

  test('sandbox shell enters a RUNNING sandbox as the agent user, is on its timeline, and refuses it STOPPED', async () => {
    const created = await cli(['sandbox', 'new', '--id', 'sbx-shell', '--json']);
    expect(created.code).toBe(0);
    const { vmid } = JSON.parse(created.stdout) as { vmid: number };
    expect(await cli(['sandbox', 'shell', String(vmid), '--', 'cat', '/etc/hostname'])).toMatchObject({
      code: 0,
      stdout: `sandbox-${vmid}`, // execa strips the last newline
    });
    // Its namespaces (hostname, pid 1 is bwrap's, the sandbox's address) as the agent user; the exit code comes back.
    const inside = await cli([
      'sandbox',
      'shell',
      'sbx-shell',
      '--',
      'sh',
      '-c',
      'hostname; id -u; ip -4 -o addr show scope global | wc -l; exit 7',
    ]);
    expect(inside).toMatchObject({ code: 7, stdout: `sandbox-${vmid}\n${SANDBOX_AGENT.uid}\n1` });
    const { timeline } = JSON.parse((await cli(['sandbox', 'show', 'sbx-shell', '--json'])).stdout) as {
      timeline: { state: string; access?: { kind: string; user: string } }[];
    };
    expect(timeline.filter((t) => t.access)).toEqual([
      expect.objectContaining({ state: 'RUNNING', access: expect.objectContaining({ kind: 'shell', user: 'root' }) }),
      expect.objectContaining({ state: 'RUNNING', access: expect.objectContaining({ kind: 'shell', user: 'root' }) }),
    ]);

    expect((await cli(['sandbox', 'stop', 'sbx-shell'])).code).toBe(0);
    const stopped = await cli(['sandbox', 'shell', 'sbx-shell', '--', 'true']);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain('cannot shell sandbox in state STOPPED: shell is allowed only in READY, RUNNING');
    expect((await cli(['sandbox', 'destroy', 'sbx-shell', '--yes'])).code).toBe(0);
  });
});
