// scripts/net: --dry-run changes nothing, --apply is idempotent, and the shell scripts pass shellcheck.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { TestNetwork } from './support/netns';

const NET_SCRIPTS = join(__dirname, '..', 'scripts', 'net');
const SCRIPTS = [
  ...readdirSync(NET_SCRIPTS).map((f) => join(NET_SCRIPTS, f)),
  ...['scripts', 'bench'].flatMap((dir) =>
    readdirSync(join(__dirname, '..', dir)).map((f) => join(__dirname, '..', dir, f)),
  ),
  join(__dirname, '..', '.ci', 'run'),
].filter((f) => f.endsWith('.sh') || f.endsWith('run'));

describe('scripts/net on a fresh network namespace', () => {
  const net = new TestNetwork();
  const inHost = (command: string, args: string[]) => net.execIn(net.host, command, args);
  const ruleset = async () => (await inHost('nft', ['list', 'ruleset'])).stdout;
  const args = ['--bridge', 'agentlab0', '--subnet', '10.78.0.0/24', '--port-prefix', 'alv'];

  beforeAll(() => net.create());
  afterAll(() => net.destroy());

  test('--dry-run prints the bridge commands and the ruleset, and changes nothing', async () => {
    const links = (await inHost('ip', ['link', 'show'])).stdout;
    const bridge = await inHost('bash', [
      join(NET_SCRIPTS, 'setup_vmbr1.sh'),
      '--dry-run',
      '--bridge',
      'agentlab0',
      '--address',
      '10.78.0.1/24',
    ]);
    expect(bridge.exitCode).toBe(0);
    expect(bridge.stdout).toContain('ip link add agentlab0 type bridge');
    const dryRun = await inHost('bash', [join(NET_SCRIPTS, 'apply.sh'), '--dry-run', ...args]);
    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout).toContain('table inet agentlab');
    expect(dryRun.stdout).toContain('169.254.0.0/16');
    expect(dryRun.stdout).toContain('ip daddr 10.78.0.1 tcp dport 8844 accept');
    expect(await ruleset()).toBe('');
    expect((await inHost('ip', ['link', 'show'])).stdout).toBe(links);
  });

  test('--apply twice gives the same ruleset', async () => {
    await inHost('bash', [
      join(NET_SCRIPTS, 'setup_vmbr1.sh'),
      '--apply',
      '--bridge',
      'agentlab0',
      '--address',
      '10.78.0.1/24',
    ]);
    const first = await inHost('bash', [join(NET_SCRIPTS, 'apply.sh'), '--apply', ...args]);
    expect(first.exitCode).toBe(0);
    const once = await ruleset();
    expect(once).toContain('table inet agentlab');
    expect(once).toContain('table bridge agentlab');
    await inHost('bash', [
      join(NET_SCRIPTS, 'setup_vmbr1.sh'),
      '--apply',
      '--bridge',
      'agentlab0',
      '--address',
      '10.78.0.1/24',
    ]);
    await inHost('bash', [join(NET_SCRIPTS, 'apply.sh'), '--apply', ...args]);
    expect(await ruleset()).toBe(once);
  });

  test('bad arguments are rejected with the field named', async () => {
    const bad = await inHost('bash', [join(NET_SCRIPTS, 'apply.sh'), '--apply', '--subnet', '10.78.0.0']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--subnet: expected a.b.c.d/n');
  });

  test('every shell script passes shellcheck', async () => {
    const result = await execa('shellcheck', SCRIPTS, { reject: false });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });
});
