// `agentlab doctor` names each missing prerequisite with its fix, and exits non-zero.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { TestNetwork } from './support/netns';
import { CLI } from './support/stack';

describe('agentlab doctor', () => {
  const net = new TestNetwork();
  const home = mkdtempSync(join(tmpdir(), 'agentlab-doctor-'));
  const configPath = join(home, 'config.yaml');
  const env = { ...process.env, AGENTLAB_CONFIG: configPath };
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
