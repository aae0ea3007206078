// `agentlab doctor` names each missing prerequisite with its fix, and exits non-zero.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import YAML from 'yaml';
import execa from 'execa';
import { TestNetwork } from './support/netns';
import { packageRoot } from '../common/paths';
import { PveSim } from '../simulators/proxmox/server';
import { CLI, WORKER } from './support/stack';

describe('agentlab doctor', () => {
  const net = new TestNetwork();
  const home = mkdtempSync(join(tmpdir(), 'agentlab-doctor-'));
  const configPath = join(home, 'config.yaml');
  const env = { ...process.env, AGENTLAB_CONFIG: configPath, AGENTLAB_SECRETS_KEY_FILE: join(home, 'keys', 'age.key') };
  const doctor = async () => {
    const result = await net.execIn(net.host, process.execPath, [CLI, 'doctor', '--json'], { env });
    return {
      code: result.exitCode,
      checks: JSON.parse(result.stdout).checks as { name: string; status: string; fix?: string }[],
    };
  };

  beforeAll(async () => {
    await net.create();
    writeFileSync(
      configPath,
      YAML.stringify({
        dataDir: join(home, 'data'),
        temporal: { address: '127.0.0.1:1' },
        local: { subnet: '10.78.0.0/24' },
      }),
    );
  });
  afterAll(() => net.destroy());

  test('on a bare host: the bridge, the ruleset, Temporal and the worker are missing, each with its fix', async () => {
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    const byName = new Map(checks.map((c) => [c.name, c]));
    expect(byName.get('root')).toMatchObject({ status: 'ok' });
    expect(byName.get('bwrap')).toMatchObject({ status: 'ok' });
    expect(byName.get('bridge')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('setup_vmbr1.sh --apply --bridge agentlab0 --address 10.78.0.1/24'),
    });
    expect(byName.get('nftables')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('apply.sh --apply --bridge agentlab0 --subnet 10.78.0.0/24'),
    });
    expect(byName.get('temporal')).toMatchObject({ status: 'fail', fix: expect.stringContaining('agentlab up') });
    expect(byName.get('worker')).toMatchObject({ status: 'fail' });
    expect(byName.get('secrets key')).toMatchObject({ status: 'warn', fix: 'agentlab secrets init' });
  });

  test('after the fixes it gave, those checks pass', async () => {
    const { checks } = await doctor();
    for (const check of checks.filter((c) => c.name === 'bridge' || c.name === 'nftables')) {
      const [script, ...args] = check.fix!.split(' (or')[0]!.split(' ');
      const applied = await net.execIn(net.host, 'bash', [join(__dirname, '..', script!), ...args]);
      expect(applied.exitCode).toBe(0);
    }
    const after = new Map((await doctor()).checks.map((c) => [c.name, c]));
    expect(after.get('bridge')).toMatchObject({ status: 'ok' });
    expect(after.get('nftables')).toMatchObject({ status: 'ok' });
  });
});

describe('agentlab doctor with the proxmox backend', () => {
  const home = mkdtempSync(join(tmpdir(), 'agentlab-doctor-pve-'));
  const snippetsDir = mkdtempSync(join(tmpdir(), 'agentlab-doctor-snippets-'));
  let sim: PveSim;

  beforeAll(async () => {
    sim = new PveSim({ snippetsDir, authFailureDelayMs: 10 });
    await sim.listen();
    sim.addTemplate(9000);
  });
  afterAll(() => sim.close());

  const doctor = async (tokenSecret: string, proxmox: Record<string, string> = {}) => {
    const configPath = join(home, 'config.yaml');
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'pve', // this host's name, which the Proxmox backend drives unless proxmox.node says otherwise
        dataDir: join(home, 'data'),
        temporal: { address: '127.0.0.1:1' },
        worker: { backends: ['proxmox'] },
        proxmox: { url: sim.url, tokenId: sim.tokenId, snippetsDir, ...proxmox },
        profiles: [
          { name: 'broken-template', backend: 'proxmox', templateVmid: 9100 },
          { name: 'big-disk', backend: 'proxmox', templateVmid: 9000, resources: { diskGb: 20 } },
          { name: 'small-disk', backend: 'proxmox', templateVmid: 9000, resources: { diskGb: 4 } },
        ],
      }),
    );
    const result = await execa(process.execPath, [CLI, 'doctor', '--json'], {
      env: { ...process.env, AGENTLAB_CONFIG: configPath, AGENTLAB_PROXMOX_TOKEN_SECRET: tokenSecret },
      reject: false,
    });
    const checks = JSON.parse(result.stdout).checks as { name: string; status: string; detail: string; fix?: string }[];
    return { code: result.exitCode, byName: new Map(checks.map((c) => [c.name, c])) };
  };

  test('a valid token and template pass; a missing template is reported with its fix', async () => {
    const { code, byName } = await doctor(sim.tokenSecret);
    expect(code).toBe(1);
    expect(byName.get('proxmox')).toMatchObject({ status: 'ok' });
    expect(byName.get('proxmox node')).toMatchObject({ status: 'ok', detail: 'pve is a node of the cluster' });
    expect(byName.get('template 9000')).toMatchObject({ status: 'ok' });
    expect(byName.get('template 9100')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('qm template'),
    });
    expect(byName.get('template 9100')!.detail).toContain('template VM 9100 is missing');
    expect(byName.get('snippets dir')).toMatchObject({ status: 'ok' });
  });

  test("a profile's diskGb is checked against its template's boot disk (8G): it may grow it, not shrink it", async () => {
    const { byName } = await doctor(sim.tokenSecret);
    expect(byName.get('disk of profile big-disk')).toMatchObject({
      status: 'ok',
      detail: 'scsi0 grown from 8G to 20G before each VM boots',
    });
    expect(byName.get('disk of profile small-disk')).toMatchObject({
      status: 'fail',
      detail: "resources.diskGb is 4G, but template 9000's boot disk (scsi0) is 8G: Proxmox cannot shrink a disk",
      fix: expect.stringContaining('resources.diskGb'),
    });
    expect(byName.has('disk of profile yolo-ephemeral')).toBe(false); // no diskGb: nothing to check
  });

  test('a configured node that is not in the cluster is named, with the nodes it has', async () => {
    const { code, byName } = await doctor(sim.tokenSecret, { node: 'node9' });
    expect(code).toBe(1);
    expect(byName.get('proxmox node')).toMatchObject({
      status: 'fail',
      detail: 'node node9 is not in the cluster, whose nodes are pve',
      fix: expect.stringContaining('proxmox.node'),
    });
    expect(byName.has('template 9000')).toBe(false);
  });

  test('a wrong token fails the Proxmox check with what to fix', async () => {
    const { code, byName } = await doctor('00000000-0000-0000-0000-000000000000');
    expect(code).toBe(1);
    expect(byName.get('proxmox')).toMatchObject({ status: 'fail', fix: expect.stringContaining('API token') });
  });
});

describe('the local backend without root', () => {
  test('the worker refuses to start with an error that says root is needed', async () => {
    const home = mkdtempSync(join(tmpdir(), 'agentlab-nonroot-'));
    chmodSync(home, 0o755);
    const configPath = join(home, 'config.yaml');
    writeFileSync(configPath, YAML.stringify({ dataDir: join(home, 'data'), guestApi: { listen: '127.0.0.1:1' } }));
    // The checkout may sit in a directory uid 65534 cannot enter (a clone under a 0700 home). A capability
    // such as CAP_DAC_READ_SEARCH does not help: access(2), hence fs.existsSync, ignores a non-root uid's
    // capabilities, and Temporal's native module is found with it. So the worker runs from a bind mount of
    // the checkout, private to its own mount namespace, under the world-readable `home`, with no capability.
    const checkout = join(home, 'checkout');
    mkdirSync(checkout);
    const result = await execa(
      'unshare',
      [
        ...['--mount', '--propagation', 'private', '--', 'sh', '-c'],
        'mount --bind "$1" "$2" && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$3" "$2/$4"',
        ...['sh', packageRoot(), checkout, process.execPath, relative(packageRoot(), WORKER)],
      ],
      { env: { ...process.env, AGENTLAB_CONFIG: configPath, HOME: home }, reject: false, timeout: 30_000 },
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('needs root (running as uid 65534)');
    expect(result.stderr).toContain('local.isolation: none');
  });
});
