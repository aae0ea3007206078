// For `npm run demo -- --agent <kind>`: the scripted model API on a host of its own, the way a sandbox
// meets a real one: a network namespace with a public-style address (TEST-NET-2) routed from this host,
// so the sandbox reaches it through the bridge and the egress policy, never through loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import execa from 'execa';
import { packageRoot } from '../common/paths';

const NETNS = 'agentlab-demo-internet';
const HOST_SIDE = 'aldemo-h';
const NS_SIDE = 'aldemo-n';
// The link between this host and the namespace: link-local, so it collides with no network the host uses.
const LINK = { host: '169.254.77.1', ns: '169.254.77.2', prefix: 30 };
/** The model API's address: not private, so the egress policy lets sandboxes reach it as the Internet. */
export const DEMO_API_ADDRESS = '198.51.100.10';
const PORT = 8080;

export class DemoInternet {
  private server?: ChildProcess;

  get baseUrl(): string {
    return `http://${DEMO_API_ADDRESS}:${PORT}`;
  }

  /** Builds the namespace and its route (replacing one a crashed demo left), then starts the model API in it. */
  async start(key: string): Promise<void> {
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
    const main = join(packageRoot(), 'dist', 'simulators', 'model-api', 'main.js');
    // The key through the environment, not argv: it would show in ps.
    this.server = spawn(
      'ip',
      ['netns', 'exec', NETNS, process.execPath, main, '--port', String(PORT), '--listen', DEMO_API_ADDRESS],
      { env: { ...process.env, AGENTLAB_MODEL_API_KEY: key }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('exit', (code) => reject(new Error(`the model API exited with ${code} before listening`)));
      createInterface({ input: server.stdout! }).once('line', () => resolve());
    });
  }

  async stop(): Promise<void> {
    this.server?.kill('SIGTERM');
    this.server = undefined;
    await execa('ip', ['route', 'del', `${DEMO_API_ADDRESS}/32`], { reject: false });
    await execa('ip', ['netns', 'del', NETNS], { reject: false }); // takes its veth end, and so both
  }
}
