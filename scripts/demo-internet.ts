// For `npm run demo -- --agent <kind>` and `--backend qemu`: "Internet" hosts of the demo's own, the way a
// sandbox meets real ones: a network namespace with a public-style address (TEST-NET-2) routed from this host,
// so the sandbox reaches it through the bridge and the egress policy, never through loopback. It serves the
// scripted model API (real agents) and the example repository over git:// (a VM cannot see host paths).
import { spawn, type ChildProcess } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import execa from 'execa';
import { packageRoot } from '../common/paths';

const NETNS = 'agentlab-demo-internet';
const HOST_SIDE = 'aldemo-h';
const NS_SIDE = 'aldemo-n';
// The link between this host and the namespace: link-local, so it collides with no network the host uses.
const LINK = { host: '169.254.77.1', ns: '169.254.77.2', prefix: 30 };
/** The namespace's address: not private, so the egress policy lets sandboxes reach it as the Internet. */
export const DEMO_API_ADDRESS = '198.51.100.10';
const PORT = 8080;
const GIT_PORT = 9418;

export class DemoInternet {
  private servers: ChildProcess[] = [];

  get baseUrl(): string {
    return `http://${DEMO_API_ADDRESS}:${PORT}`;
  }

  /** Builds the namespace and its route, replacing one a crashed demo left. */
  async start(): Promise<void> {
    await this.stop();
    const ip = (...args: string[]) => execa('ip', args);
    await ip('netns', 'add', NETNS);
    await ip('link', 'add', HOST_SIDE, 'type', 'veth', 'peer', 'name', NS_SIDE);
    await ip('link', 'set', NS_SIDE, 'netns', NETNS);
    await ip('addr', 'add', `${LINK.host}/${LINK.prefix}`, 'dev', HOST_SIDE);
    await ip('link', 'set', HOST_SIDE, 'up');
    await ip('-n', NETNS, 'addr', 'add', `${LINK.ns}/${LINK.prefix}`, 'dev', NS_SIDE);
    await ip('-n', NETNS, 'addr', 'add', `${DEMO_API_ADDRESS}/32`, 'dev', 'lo');
    await ip('-n', NETNS, 'link', 'set', 'lo', 'up');
    await ip('-n', NETNS, 'link', 'set', NS_SIDE, 'up');
    await ip('-n', NETNS, 'route', 'add', 'default', 'via', LINK.host, 'dev', NS_SIDE);
    await ip('route', 'replace', `${DEMO_API_ADDRESS}/32`, 'via', LINK.ns, 'dev', HOST_SIDE);
  }

  /** The scripted model API on `baseUrl`, accepting `key`. */
  async serveModelApi(key: string): Promise<void> {
    const main = join(packageRoot(), 'dist', 'simulators', 'model-api', 'main.js');
    // The key through the environment, not argv: it would show in ps.
    const server = this.spawnInNamespace(
      process.execPath,
      [main, '--port', String(PORT), '--listen', DEMO_API_ADDRESS],
      { ...process.env, AGENTLAB_MODEL_API_KEY: key },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('exit', (code) => reject(new Error(`the model API exited with ${code} before listening`)));
      createInterface({ input: server.stdout! }).once('line', () => resolve());
    });
  }

  /** The git repository `repo` over git:// (read-only, with its siblings); returns its URL. */
  async serveGit(repo: string): Promise<string> {
    const url = `git://${DEMO_API_ADDRESS}/${basename(repo)}`;
    // git-daemon itself, not `git daemon`: git would run it as a child that outlives our SIGTERM.
    const daemon = join((await execa('git', ['--exec-path'])).stdout.trim(), 'git-daemon');
    const server = this.spawnInNamespace(daemon, [
      ...['--reuseaddr', '--export-all', `--base-path=${dirname(repo)}`],
      ...[`--listen=${DEMO_API_ADDRESS}`, `--port=${GIT_PORT}`, dirname(repo)],
    ]);
    let exited: number | null | undefined;
    server.once('exit', (code) => (exited = code));
    // git-daemon says nothing once it listens: ready is when the repository lists, through the route as a guest's.
    for (const deadline = Date.now() + 10_000; ; await sleep(200)) {
      if ((await execa('git', ['ls-remote', url], { reject: false, timeout: 5000 })).exitCode === 0) return url;
      if (exited !== undefined) throw new Error(`git-daemon exited with ${exited} before serving ${url}`);
      if (Date.now() > deadline) throw new Error(`git-daemon does not serve ${url}`);
    }
  }

  async stop(): Promise<void> {
    for (const server of this.servers) server.kill('SIGTERM');
    this.servers = [];
    await execa('ip', ['route', 'del', `${DEMO_API_ADDRESS}/32`], { reject: false });
    await execa('ip', ['netns', 'del', NETNS], { reject: false }); // takes its veth end, and so both
  }

  private spawnInNamespace(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    // `ip netns exec` execs the command: the pid we kill is the server's own.
    const child = spawn('ip', ['netns', 'exec', NETNS, command, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.servers.push(child);
    return child;
  }
}
