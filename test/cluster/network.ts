// The cluster's "datacenter": a bridge in the test's namespace that carries the Temporal services' address, and
// hosts as network namespaces with a veth on that bridge. A worker in a host reaches Temporal only over the
// bridge, as a worker on another machine would; nothing here touches the machine's real network.
import { randomBytes } from 'node:crypto';
import execa from 'execa';

const ip = (...args: string[]) => execa('ip', args);

export class ClusterNetwork {
  readonly bridge: string;
  readonly gateway: string;
  private readonly hosts: string[] = [];

  /** A /24 of 10.231.0.0/16, picked at random so that two runs on one machine do not meet. */
  constructor(
    readonly id = randomBytes(3).toString('hex'),
    private readonly prefix = `10.231.${randomBytes(1)[0]}`,
  ) {
    this.bridge = `albc${id}`;
    this.gateway = `${prefix}.1`;
  }

  /** What a test file needs to add hosts to the global setup's bridge. */
  toEnv(): string {
    return JSON.stringify({ id: this.id, prefix: this.prefix });
  }

  static attach(env = process.env.AGENTLAB_TEST_CLUSTER_NETWORK): ClusterNetwork {
    if (!env) throw new Error('AGENTLAB_TEST_CLUSTER_NETWORK is unset: run the suite with `npm run test:cluster`');
    const { id, prefix } = JSON.parse(env) as { id: string; prefix: string };
    return new ClusterNetwork(id, prefix);
  }

  hostName(index: number): string {
    return `albc-${this.id}-h${index}`;
  }

  async create(): Promise<void> {
    await ip('link', 'add', this.bridge, 'type', 'bridge');
    await ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge);
    await ip('link', 'set', this.bridge, 'up');
  }

  /** A host: a namespace with loopback and one address on the bridge. Its name is the namespace's. */
  async addHost(index: number): Promise<{ name: string; ip: string }> {
    const name = this.hostName(index);
    const address = `${this.prefix}.${10 + index}`;
    const outer = `albc${this.id}h${index}`;
    await ip('netns', 'add', name);
    this.hosts.push(name);
    await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
    await ip('link', 'set', outer, 'master', this.bridge);
    await ip('link', 'set', outer, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    await ip('-n', name, 'link', 'set', 'eth0', 'up');
    return { name, ip: address };
  }

  /** Deleting a namespace deletes its veth end, and the peer with it. */
  async destroyHosts(): Promise<void> {
    for (const host of this.hosts.splice(0)) await execa('ip', ['netns', 'del', host], { reject: false });
  }

  async destroy(): Promise<void> {
    await this.destroyHosts();
    await execa('ip', ['link', 'del', this.bridge], { reject: false });
  }
}
