// A self-contained network for isolation tests: a "host" namespace (the worker's side, with its own
// Temporal, the sandbox bridge and nftables) whose only uplink leads to an "outside" namespace that
// plays the LAN, the metadata service and the Internet. Nothing routes to the machine's real network.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import execa from 'execa';
import { devServerArgs, temporalCliPath } from '../../common/temporal-server';
import { CLI, eventually, WORKER, type CliResult } from './stack';

export const HOST_UPLINK = '192.0.2.2';
export const OUTSIDE_ROUTER = '192.0.2.1';
/** Test hosts in the outside namespace, each answering HTTP on port 80 with its own address. */
export const OUTSIDE_HOSTS = {
  lan10: '10.20.0.10',
  lan192: '192.168.50.10',
  metadata: '169.254.169.254',
  internet: '198.51.100.10',
} as const;

export class TestNetwork {
  readonly id = randomBytes(3).toString('hex');
  readonly host = `alt-host-${this.id}`;
  readonly outside = `alt-out-${this.id}`;
  private readonly processes: ChildProcess[] = [];

  async create(): Promise<void> {
    const ip = (...args: string[]) => execa('ip', args);
    await ip('netns', 'add', this.host);
    await ip('netns', 'add', this.outside);
    const hostPort = `up${this.id}`;
    const outsidePort = `dn${this.id}`;
    await ip('link', 'add', hostPort, 'type', 'veth', 'peer', 'name', outsidePort);
    await ip('link', 'set', hostPort, 'netns', this.host);
    await ip('link', 'set', outsidePort, 'netns', this.outside);
    await ip('-n', this.host, 'link', 'set', 'lo', 'up');
    await ip('-n', this.host, 'link', 'set', hostPort, 'name', 'uplink0');
    await ip('-n', this.host, 'addr', 'add', `${HOST_UPLINK}/24`, 'dev', 'uplink0');
    await ip('-n', this.host, 'link', 'set', 'uplink0', 'up');
    await ip('-n', this.host, 'route', 'add', 'default', 'via', OUTSIDE_ROUTER);
    await ip('-n', this.outside, 'link', 'set', 'lo', 'up');
    await ip('-n', this.outside, 'addr', 'add', `${OUTSIDE_ROUTER}/24`, 'dev', outsidePort);
    await ip('-n', this.outside, 'link', 'set', outsidePort, 'up');
    for (const address of Object.values(OUTSIDE_HOSTS)) {
      await ip('-n', this.outside, 'addr', 'add', `${address}/32`, 'dev', 'lo');
    }
    // Were the host to forward sandbox traffic to these, the outside would answer it.
    await ip('-n', this.outside, 'route', 'add', '10.78.0.0/16', 'via', HOST_UPLINK);
  }

  /** A long-running process inside a namespace, killed by destroy(). */
  spawnIn(ns: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', () => undefined);
    child.stderr!.on('data', () => undefined);
    this.processes.push(child);
    return child;
  }

  execIn(ns: string, command: string, args: string[], options: execa.Options = {}) {
    return execa('ip', ['netns', 'exec', ns, command, ...args], { reject: false, ...options });
  }

  /** The agentlab CLI inside the host namespace, with `env` (its AGENTLAB_CONFIG): as an operator on that host. */
  async cli(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 120_000): Promise<CliResult> {
    const result = await this.execIn(this.host, process.execPath, [CLI, ...args], { env, timeout: timeoutMs });
    return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  /** An HTTP server answering "hello from <address it was reached on>". */
  serveHello(ns: string, port: number): ChildProcess {
    const script = `require('http').createServer((q, r) => r.end('hello from ' + q.socket.localAddress)).listen(${port}, '0.0.0.0')`;
    return this.spawnIn(ns, process.execPath, ['-e', script]);
  }

  /**
   * The host's own stack inside the host namespace: a Temporal dev server on 127.0.0.1:7233 and a worker
   * with `env` (its AGENTLAB_CONFIG), returned once the worker's guest API answers on the bridge gateway.
   */
  async startHostStack(env: NodeJS.ProcessEnv, gateway = '10.78.0.1'): Promise<void> {
    this.spawnIn(this.host, temporalCliPath(), devServerArgs({ ip: '127.0.0.1', port: 7233, namespace: 'default' }));
    const health = ['operator', 'cluster', 'health', '--address', '127.0.0.1:7233'];
    await eventually(
      'Temporal in the host namespace',
      async () => (await this.execIn(this.host, temporalCliPath(), health)).exitCode === 0,
      60_000,
    );
    await this.startWorker(env, gateway);
  }

  /** A worker in the host namespace (`ip netns exec` execs it: the child is the worker), once it answers. */
  async startWorker(env: NodeJS.ProcessEnv, gateway = '10.78.0.1'): Promise<ChildProcess> {
    const worker = this.spawnIn(this.host, process.execPath, [WORKER], env);
    await eventually(
      'the worker on the sandbox bridge',
      async () => (await this.execIn(this.host, 'curl', ['-sf', `http://${gateway}:8844/healthz`])).exitCode === 0,
      60_000,
    );
    return worker;
  }

  async destroy(): Promise<void> {
    for (const child of this.processes) child.kill('SIGKILL');
    await execa('ip', ['netns', 'del', this.host], { reject: false });
    await execa('ip', ['netns', 'del', this.outside], { reject: false });
  }
}
