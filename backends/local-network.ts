// Host networking for the local backend: the sandbox bridge with agentlab's nftables policy, and one
// network namespace per sandbox joined to the bridge by an isolated veth port.
import { join } from 'node:path';
import execa from 'execa';
import { packageRoot } from '../common/paths';
import { intToIpv4, ipv4ToInt } from '../common/ipv4';

export interface LocalNetworkOptions {
  bridge: string;
  /** e.g. 10.78.0.0/22; the gateway (the host on the bridge) is its first address. */
  subnet: string;
  guestApiPort: number;
  uplink?: string;
}

/** Host-side veth ports share this prefix; the ruleset's layer-2 rule keys on it. */
export const PORT_PREFIX = 'alv';
export const sandboxNetns = (vmid: number) => `agentlab-${vmid}`;
const hostPort = (vmid: number) => `${PORT_PREFIX}${vmid}`;
const peerPort = (vmid: number) => `alp${vmid}`;

export class LocalNetwork {
  private readonly base: number;
  private readonly prefix: number;
  private hostReady?: Promise<void>;

  constructor(
    private readonly options: LocalNetworkOptions,
    private readonly vmidRange: { min: number; max: number },
  ) {
    const [address, prefix] = options.subnet.split('/') as [string, string];
    this.prefix = Number(prefix);
    this.base = ipv4ToInt(address);
    const capacity = 2 ** (32 - this.prefix) - 3; // network, gateway, broadcast
    if (vmidRange.max - vmidRange.min + 1 > capacity) {
      throw new Error(
        `local.subnet ${options.subnet} has room for ${capacity} sandboxes but vmidRange ${vmidRange.min}-${vmidRange.max} needs ${vmidRange.max - vmidRange.min + 1}`,
      );
    }
  }

  get gateway(): string {
    return intToIpv4(this.base + 1);
  }

  address(vmid: number): string {
    return intToIpv4(this.base + 2 + (vmid - this.vmidRange.min));
  }

  /** The address with the subnet's prefix length, as an interface is configured with it. */
  cidr(vmid: number): string {
    return `${this.address(vmid)}/${this.prefix}`;
  }

  get bridge(): string {
    return this.options.bridge;
  }

  /** Bridge and ruleset, through the same scripts an operator runs on a Proxmox host. Once per process. */
  ensureHost(): Promise<void> {
    this.hostReady ??= (async () => {
      const net = join(packageRoot(), 'scripts', 'net');
      await execa('bash', [
        join(net, 'setup_vmbr1.sh'),
        '--apply',
        '--bridge',
        this.options.bridge,
        '--address',
        `${this.gateway}/${this.prefix}`,
      ]);
      await execa('bash', [
        join(net, 'apply.sh'),
        '--apply',
        '--bridge',
        this.options.bridge,
        '--subnet',
        this.options.subnet,
        '--gateway',
        this.gateway,
        '--guest-api-port',
        String(this.options.guestApiPort),
        '--port-prefix',
        PORT_PREFIX,
        ...(this.options.uplink ? ['--uplink', this.options.uplink] : []),
      ]);
    })().catch((err: unknown) => {
      this.hostReady = undefined;
      throw err;
    });
    return this.hostReady;
  }

  /** A fresh namespace with eth0 on the bridge; recreated whole if an earlier attempt left a part. */
  async createSandbox(vmid: number): Promise<void> {
    await this.ensureHost();
    await this.destroySandbox(vmid);
    const ns = sandboxNetns(vmid);
    const ip = (...args: string[]) => execa('ip', args);
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostPort(vmid), 'type', 'veth', 'peer', 'name', peerPort(vmid));
    await ip('link', 'set', peerPort(vmid), 'netns', ns);
    await ip('link', 'set', hostPort(vmid), 'master', this.options.bridge);
    await execa('bridge', ['link', 'set', 'dev', hostPort(vmid), 'isolated', 'on']);
    await ip('link', 'set', hostPort(vmid), 'up');
    await ip('-n', ns, 'link', 'set', peerPort(vmid), 'name', 'eth0');
    await ip('-n', ns, 'addr', 'add', `${this.address(vmid)}/${this.prefix}`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'route', 'add', 'default', 'via', this.gateway);
    await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  }

  async destroySandbox(vmid: number): Promise<void> {
    await execa('ip', ['netns', 'del', sandboxNetns(vmid)], { reject: false });
    await execa('ip', ['link', 'del', hostPort(vmid)], { reject: false });
  }

  async sandboxExists(vmid: number): Promise<boolean> {
    const { stdout } = await execa('ip', ['netns', 'list']);
    return stdout.split('\n').some((line) => line.split(' ')[0] === sandboxNetns(vmid));
  }
}
