// How the real agent CLIs fail against a model API that refuses the key, rate-limits, errors or hangs.
import type { AgentKind } from '../common/agents';
import { ModelApiServer, type Fault } from '../simulators/model-api/server';
import {
  agentsBinDir,
  KEY,
  runAgent,
  scratch,
  startAgent,
  stopAgent,
  type AgentResult,
  type Scratch,
} from './support/model-api';
import { sleep } from './support/stack';

// Each agent's own words for each failure (they do not all repeat the server's message).
const MESSAGES: Record<AgentKind, Record<'wrongKey' | 'rateLimited' | 'serverError', RegExp[]>> = {
  claude: {
    wrongKey: [/Invalid API key/, /"api_error_status":401/, /authentication_error/],
    rateLimited: [/Request rejected \(429\)/, /exceeded your per-minute rate limit/],
    serverError: [/API Error: 500 Internal server error/],
  },
  codex: {
    wrongKey: [/unexpected status 401 Unauthorized: Incorrect API key provided/],
    rateLimited: [/last status: 429 Too Many Requests/],
    // Codex reports every 500 with this sentence of its own and no status (the server's log has the 500).
    serverError: [/We’re currently experiencing high demand/],
  },
  opencode: {
    wrongKey: [/Incorrect API key provided/, /"statusCode":401/],
    rateLimited: [/Rate limit reached for requests/, /"statusCode":429/],
    serverError: [/The server had an error while processing your request/, /"statusCode":500/],
  },
};

describe.each(Object.keys(MESSAGES) as AgentKind[])('%s against a failing model API', (kind) => {
  let server: ModelApiServer;
  let dir: Scratch;
  const task = 'Create AGENT_EDIT.md as planned.';

  beforeAll(() => agentsBinDir());
  afterEach(async () => {
    await server.close();
    dir.cleanup();
  });

  async function serve(faults: Fault[] = []): Promise<void> {
    server = new ModelApiServer({ key: KEY, faults });
    await server.listen(0, '127.0.0.1');
    dir = scratch();
  }

  function expectFailure(result: AgentResult, messages: RegExp[]): void {
    const output = result.stdout + result.stderr;
    expect(result.code).not.toBe(0);
    for (const message of messages) expect(output).toMatch(message);
    expect(output).not.toContain(KEY);
  }

  test('a wrong key: 401 with the provider’s error body, the agent exits non-zero saying so', async () => {
    await serve();
    // Claude Code retries a 401 ten times over two minutes unless told not to.
    const result = await runAgent(kind, {
      baseUrl: server.url,
      scratch: dir,
      task,
      key: 'sk-wrong-key',
      maxRetries: 0,
    });
    expectFailure(result, MESSAGES[kind].wrongKey);
    expect(server.requests.length).toBeGreaterThan(0);
    expect(server.requests.every((r) => r.auth === 'wrong' && r.status === 401)).toBe(true);
  });

  test('429 on every request: the agent gives up and names the rate limit', async () => {
    await serve([{ mode: 429, retryAfterSeconds: 0 }]);
    const result = await runAgent(kind, { baseUrl: server.url, scratch: dir, task, maxRetries: 0 });
    expectFailure(result, MESSAGES[kind].rateLimited);
    expect(server.requests.every((r) => r.status === 429 && r.auth === 'ok')).toBe(true);
  });

  test('500 on every request: the agent gives up with its server-error message', async () => {
    // retry-after 0: OpenCode, whose retries cannot be configured, then retries without waiting.
    await serve([{ mode: 500, retryAfterSeconds: 0 }]);
    const result = await runAgent(kind, { baseUrl: server.url, scratch: dir, task, maxRetries: 0 });
    expectFailure(result, MESSAGES[kind].serverError);
    expect(server.requests.every((r) => r.status === 500)).toBe(true);
  });

  test('a request that is accepted and never answered leaves the agent waiting', async () => {
    await serve([{ mode: 'hang' }]);
    const { child, done } = startAgent(kind, { baseUrl: server.url, scratch: dir, task, maxRetries: 0 });
    try {
      for (let waited = 0; server.hangingCount === 0 && waited < 60_000; waited += 200) await sleep(200);
      expect(server.hangingCount).toBeGreaterThan(0);
      await sleep(5_000);
      // Still running and still waiting: the runner's timeout, not the agent, will have to end this.
      expect(child.exitCode).toBeNull();
      expect(server.hangingCount).toBeGreaterThan(0);
      expect(server.requests.filter((r) => r.status === 'hang').length).toBeGreaterThan(0);
    } finally {
      stopAgent(child);
    }
    expect((await done).signal).toBe('SIGKILL');
  });
});
