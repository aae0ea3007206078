// scripts/net: --dry-run changes nothing, --apply is idempotent, and the shell scripts pass shellcheck.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { OUTSIDE_HOSTS, TestNetwork } from './support/netns';
import { eventually } from './support/stack';

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

  test('an operator route (--operator-iface) reaches guests on port 22 only; guests reach nothing more', async () => {
    // A guest on the bridge serving HTTP on 22 and 80, and a tailnet client outside (CGNAT, which no guest may dial).
    const guest = `alt-g-${net.id}`;
    const tailnet = '100.100.1.1';
    const ip = (...a: string[]) => execa('ip', a);
    await ip('netns', 'add', guest);
    try {
      await ip('link', 'add', `alv${net.id}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest);
      await ip('link', 'set', `alv${net.id}`, 'netns', net.host);
      await ip('-n', net.host, 'link', 'set', `alv${net.id}`, 'master', 'agentlab0', 'up');
      await ip('-n', guest, 'addr', 'add', '10.78.0.5/24', 'dev', 'eth0');
      await ip('-n', guest, 'link', 'set', 'eth0', 'up');
      await ip('-n', guest, 'link', 'set', 'lo', 'up');
      await ip('-n', guest, 'route', 'add', 'default', 'via', '10.78.0.1');
      await ip('-n', net.outside, 'addr', 'add', `${tailnet}/32`, 'dev', 'lo');
      for (const port of [22, 80]) net.serveHello(guest, port);
      net.serveHello(net.outside, 80);
      net.serveHello(net.host, 9999);
      const fromTailnet = async (port: number) =>
        (
          await net.execIn(net.outside, 'curl', [
            '-s',
            '--max-time',
            '2',
            '--interface',
            tailnet,
            `http://10.78.0.5:${port}/`,
          ])
        ).stdout;
      const fromGuest = async (url: string) => (await net.execIn(guest, 'curl', ['-s', '--max-time', '1', url])).stdout;
      await eventually('the guest to serve', async () => (await fromGuest('http://10.78.0.5:22/')) !== '');

      expect(await fromTailnet(22)).toBe(''); // the default policy lets nothing routed in
      const routed = await inHost('bash', [
        join(NET_SCRIPTS, 'apply.sh'),
        '--apply',
        ...args,
        '--operator-iface',
        'uplink0',
      ]);
      expect(routed.exitCode).toBe(0);
      expect(await fromTailnet(22)).toBe('hello from 10.78.0.5');
      expect(await fromTailnet(80)).toBe('');
      // The guest still reaches the Internet, and neither the tailnet client nor the host.
      expect(await fromGuest(`http://${OUTSIDE_HOSTS.internet}/`)).toBe(`hello from ${OUTSIDE_HOSTS.internet}`);
      expect(await fromGuest(`http://${tailnet}/`)).toBe('');
      expect(await fromGuest('http://10.78.0.1:9999/')).toBe('');

      // setup_tailscale_router.sh advertises the subnet and renders the same rules (dry run: no tailscale here).
      const router = await inHost('bash', [
        join(NET_SCRIPTS, 'setup_tailscale_router.sh'),
        ...['--dry-run', '--subnet', '10.78.0.0/24', '--iface', 'uplink0', '--', '--bridge', 'agentlab0'],
      ]);
      expect(router.exitCode).toBe(0);
      expect(router.stdout).toContain('tailscale set --advertise-routes=10.78.0.0/24');
      expect(router.stdout).toContain('iifname "uplink0" oifname "agentlab0" tcp dport 22 ct state new accept');
    } finally {
      await ip('netns', 'del', guest);
      await inHost('bash', [join(NET_SCRIPTS, 'apply.sh'), '--apply', ...args]);
    }
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
