// `agentlab up | status | down`: the embedded stack starts a persistent dev server and a worker, reuses
// them when already up, and stops both; a start that fails is reported at once, with its cause, and
// leaves nothing of that `up` running.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import YAML from 'yaml';
import { errorSchema, statusSchema } from '../cli/json-schemas';
import { agentlab, embeddedStack, heldPorts, liveProcesses, type EmbeddedStack } from './support/embedded-stack';

/** Far below up's 60 s start-up wait: a failure must be noticed when it happens, not at the deadline. */
const FAIL_FAST_MS = 30_000;

describe('agentlab up, status, down', () => {
  let stack: EmbeddedStack;
  const cli = (...args: string[]) => agentlab(stack, args);

  beforeAll(async () => {
    stack = await embeddedStack();
  });
  afterAll(() => cli('down'));

  test('up starts both with a Web UI and SQLite, is idempotent, and down stops both', async () => {
    const up = await cli('up', '--json');
    expect(up.exitCode).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ temporal: { status: 'started' }, worker: { status: 'started' } });
    expect(existsSync(join(stack.dataDir, 'temporal.sqlite'))).toBe(true);
    const uiUrl = YAML.parse(readFileSync(stack.configPath, 'utf8')).temporal.uiUrl;
    expect((await fetch(uiUrl)).ok).toBe(true);

    const again = await cli('up', '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({
      temporal: { status: 'already running' },
      worker: { status: 'already running' },
    });

    const status = statusSchema.parse(JSON.parse((await cli('status', '--json')).stdout));
    expect(status).toMatchObject({ temporal: { reachable: true }, worker: { healthy: true } });
    const pids = [status.temporal.pid!, status.worker.pid!];

    const down = await cli('down', '--json');
    expect(JSON.parse(down.stdout)).toEqual({ worker: 'stopped', temporal: 'stopped' });
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const after = await cli('status');
    expect(after.exitCode).toBe(5);
  });
});

describe('agentlab up that cannot start', () => {
  const stacks: EmbeddedStack[] = [];
  let listener: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (listener ? listener.close(resolve) : resolve(undefined)));
    listener = undefined;
  });
  afterAll(async () => {
    for (const stack of stacks) await agentlab(stack, ['down']);
  });

  const failedUp = async (stack: EmbeddedStack) => {
    stacks.push(stack);
    const up = await agentlab(stack, ['up', '--json'], { timeoutMs: FAIL_FAST_MS });
    expect(up.timedOut).toBe(false);
    expect(up.exitCode).toBe(1);
    return errorSchema.parse(JSON.parse(up.stdout)).error;
  };

  test('a worker that exits during start-up: its own error line at once, and the dev server it started is stopped', async () => {
    // The worker reads its operator token before anything else: a missing file stops it with the fix.
    const stack = await embeddedStack({
      local: { isolation: 'none' },
      operatorApi: { listen: '127.0.0.1:0', tokenFile: '/nonexistent/operator.token' },
    });
    const error = await failedUp(stack);
    expect(error.code).toBe('start_failed');
    expect(error.message).toContain('the worker exited during start-up (exit code 1)');
    expect(error.message).toContain('operator API token file /nonexistent/operator.token does not exist');
    expect(error.message).toContain('Stopped the Temporal dev server');
    expect(error.details).toMatchObject({ process: 'worker', stopped: [{ process: 'temporal' }] });
    expect(liveProcesses(stack)).toEqual([]);
    expect(await heldPorts(stack)).toEqual([]);
  });

  test.each([
    ['frontend', 'temporal', 'temporal.address'],
    ['Web UI', 'ui', 'temporal.uiUrl'],
  ] as const)(
    "Temporal's %s port held by another process: names the port, its holder and the setting",
    async (_, key, setting) => {
      const stack = await embeddedStack();
      const port = stack.ports[key];
      // Accepts and hangs up: whatever holds the port, it is not a Temporal server.
      listener = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => listener!.listen(port, '127.0.0.1', resolve));

      const error = await failedUp(stack);
      expect(error.code).toBe('start_failed');
      expect(error.message).toContain(`port ${port} is held by pid ${process.pid} (`);
      expect(error.message).toContain(`set ${setting} to a free port`);
      expect(error.details).toMatchObject({ process: 'temporal', port, holder: { pid: process.pid } });
      expect(liveProcesses(stack)).toEqual([]);
    },
  );
});
