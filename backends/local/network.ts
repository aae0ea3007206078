// Host networking for the local backend: the sandbox bridge with agentlab's nftables policy, and one
// network namespace per sandbox joined to the bridge by an isolated veth port.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { packageRoot } from '../../common/paths';
import { intToIpv4, ipv4ToInt } from '../../common/ipv4';

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

  /**
   * A fresh namespace with eth0 on the bridge; recreated whole if an earlier attempt left a part.
   * Two `ip -batch` processes instead of a dozen `ip` runs: each process the worker forks copies its page
   * tables (~5 ms of CPU at 300 MB), which made spawning the largest single cost of a job in the worker.
   */
  async createSandbox(vmid: number): Promise<void> {
    await this.ensureHost();
    if (await this.hasLeftovers(vmid)) await this.destroySandbox(vmid);
    const ns = sandboxNetns(vmid);
    await ipBatch(
      ['-batch', '-'],
      [
        `netns add ${ns}`,
        `link add ${hostPort(vmid)} type veth peer name ${peerPort(vmid)}`,
        `link set ${peerPort(vmid)} netns ${ns}`,
        `link set ${hostPort(vmid)} master ${this.options.bridge}`,
        `link set dev ${hostPort(vmid)} type bridge_slave isolated on`,
        `link set ${hostPort(vmid)} up`,
      ],
    );
    // Inside the namespace: no IPv6 at all (the egress policy is written for IPv4), then eth0 and the route.
    await ipBatch(
      ['netns', 'exec', ns, 'sh', '-c', 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && exec ip -batch -'],
      [
        `link set ${peerPort(vmid)} name eth0`,
        `addr add ${this.address(vmid)}/${this.prefix} dev eth0`,
        'link set eth0 up',
        'link set lo up',
        `route add default via ${this.gateway}`,
      ],
    );
  }

  async destroySandbox(vmid: number): Promise<void> {
    // -force: go on after a failed line, so a half-made sandbox loses whatever part it has.
    await execa('ip', ['-force', '-batch', '-'], {
      input: `netns del ${sandboxNetns(vmid)}\nlink del ${hostPort(vmid)}\n`,
      reject: false,
    });
  }

  /** Read from the files `ip` itself reads: no process to fork. */
  async sandboxExists(vmid: number): Promise<boolean> {
    return exists(join(NETNS_DIR, sandboxNetns(vmid)));
  }

  /** Host pids of every process inside the sandbox's namespace (what `ip netns pids` does, without forking it). */
  async sandboxPids(vmid: number): Promise<number[]> {
    let netns: { dev: number; ino: number };
    try {
      netns = await fs.stat(join(NETNS_DIR, sandboxNetns(vmid)));
    } catch {
      return [];
    }
    const pids = (await fs.readdir('/proc')).filter((name) => /^\d+$/.test(name));
    const inside = await Promise.all(
      pids.map(async (pid) => {
        try {
          const ns = await fs.stat(`/proc/${pid}/ns/net`);
          return ns.ino === netns.ino && ns.dev === netns.dev ? Number(pid) : undefined;
        } catch {
          return undefined; // exited meanwhile
        }
      }),
    );
    return inside.filter((pid): pid is number => pid !== undefined);
  }

  private async hasLeftovers(vmid: number): Promise<boolean> {
    return (await this.sandboxExists(vmid)) || (await exists(join('/sys/class/net', hostPort(vmid))));
  }
}

const NETNS_DIR = '/run/netns';

/** One `ip` process for many commands, read from stdin; `ip -batch` stops at the first failing line and names it. */
async function ipBatch(args: string[], lines: string[]): Promise<void> {
  await execa('ip', args, { input: lines.join('\n') + '\n' });
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}
