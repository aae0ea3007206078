// The three real agent CLIs complete a scripted task against the model API simulator: their own tools edit the repo.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentKind } from '../common/agents';
import type { ApiKind } from '../simulators/model-api/conversation';
import { VERIFIED_AGENT_VERSIONS } from '../simulators/model-api/agent-invocations';
import { ModelApiServer } from '../simulators/model-api/server';
import {
  agentsBinDir,
  describeOutput,
  gitStatus,
  KEY,
  modelTurns,
  readRequestLog,
  runAgent,
  scratch,
  startModelApiIn,
  startProxyTrap,
  type AgentResult,
  type Scratch,
} from './support/model-api';

interface Expected {
  api: ApiKind;
  path: string;
  /** The tool each agent offers for writing a file, and what it answers when it did. */
  writeTool: string;
  writeResult: RegExp;
  shellTool: string;
  /** Input and output tokens as the agent reports them in its own output. */
  usage(result: AgentResult): { input: number; output: number };
}

const jsonLines = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

type Counts = { input_tokens: number; output_tokens: number };
const EXPECTED: Record<AgentKind, Expected> = {
  claude: {
    api: 'anthropic-messages',
    path: '/v1/messages',
    writeTool: 'Write',
    writeResult: /^File created successfully at: .*AGENT_EDIT\.md/,
    shellTool: 'Bash',
    usage: (result) => {
      const final = jsonLines(result.stdout).find((e) => e.type === 'result') as { usage: Counts };
      return { input: final.usage.input_tokens, output: final.usage.output_tokens };
    },
  },
  codex: {
    api: 'openai-responses',
    path: '/v1/responses',
    writeTool: 'apply_patch',
    writeResult: /Success\. Updated the following files:\nA AGENT_EDIT\.md/,
    shellTool: 'exec_command',
    usage: (result) => {
      const turn = jsonLines(result.stdout).find((e) => e.type === 'turn.completed') as { usage: Counts };
      return { input: turn.usage.input_tokens, output: turn.usage.output_tokens };
    },
  },
  opencode: {
    api: 'openai-chat',
    path: '/v1/chat/completions',
    writeTool: 'write',
    writeResult: /^Wrote file successfully/,
    shellTool: 'bash',
    usage: (result) => {
      const steps = jsonLines(result.stdout).filter((e) => e.type === 'step_finish');
      const tokens = steps.map((e) => (e.part as { tokens: { input: number; output: number } }).tokens);
      return { input: tokens.reduce((n, t) => n + t.input, 0), output: tokens.reduce((n, t) => n + t.output, 0) };
    },
  },
};

describe.each(Object.keys(EXPECTED) as AgentKind[])('%s against the scripted model API', (kind) => {
  const expected = EXPECTED[kind];
  let server: ModelApiServer;
  let dir: Scratch;

  beforeAll(() => agentsBinDir()); // fails every test here, with the install command, when the agents are missing
  beforeEach(async () => {
    server = new ModelApiServer({ key: KEY });
    await server.listen(0, '127.0.0.1');
    dir = scratch();
  });
  afterEach(async () => {
    await server.close();
    dir.cleanup();
  });

  test('is the version the recipes were verified with', () => {
    const version = execFileSync(join(agentsBinDir(), kind), ['--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(version).toContain(VERIFIED_AGENT_VERSIONS[kind]);
  });

  test('writes AGENT_EDIT.md with its own file tool, reads the result, finishes; asks nobody else', async () => {
    const trap = await startProxyTrap();
    let result: AgentResult;
    try {
      const task = 'Create AGENT_EDIT.md as planned.';
      result = await runAgent(kind, { baseUrl: server.url, scratch: dir, task, extraEnv: trap.env });
    } finally {
      await trap.close();
    }
    expect({ code: result.code, output: describeOutput(result) }).toMatchObject({ code: 0 });
    // No update check, telemetry, plugin sync, model catalogue or package install went through the proxy.
    expect(trap.seen).toEqual([]);

    expect(gitStatus(dir.repo)).toBe('?? AGENT_EDIT.md\n');
    expect(readFileSync(join(dir.repo, 'AGENT_EDIT.md'), 'utf8')).toBe(`edited by ${kind}\n`);

    // Every request carried the right key, came from this agent, on its API; the script ran: call, result, finish.
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
    for (const request of server.requests) {
      expect(request).toMatchObject({ auth: 'ok', agent: kind, api: expected.api, path: expected.path, status: 200 });
    }
    const turns = modelTurns(server.requests);
    expect(turns).toEqual([
      { step: 0, reply: 'tool_call', tool: expected.writeTool, toolResult: undefined },
      { step: 1, reply: 'finish', tool: undefined, toolResult: expect.stringMatching(expected.writeResult) },
    ]);

    // The usage the server sent is the usage the agent reports (summed over its model requests).
    const sent = server.requests.filter((r) => r.reply === 'tool_call' || r.reply === 'finish');
    expect(expected.usage(result)).toEqual({
      input: sent.reduce((n, r) => n + r.usage!.inputTokens, 0),
      output: sent.reduce((n, r) => n + r.usage!.outputTokens, 0),
    });

    expect(result.stdout + result.stderr).not.toContain(KEY);
    expect(JSON.stringify(server.requests)).not.toContain(KEY);
  });

  test('runs a command with its own shell tool when the task names the shell-edit scenario', async () => {
    const task = 'Append the note. scenario:shell-edit';
    const result = await runAgent(kind, { baseUrl: server.url, scratch: dir, task });
    expect({ code: result.code, output: describeOutput(result) }).toMatchObject({ code: 0 });
    expect(gitStatus(dir.repo)).toBe('?? NOTES.md\n');
    expect(readFileSync(join(dir.repo, 'NOTES.md'), 'utf8')).toBe(`shell edit by ${kind}\n`);
    expect(modelTurns(server.requests).map((t) => [t.step, t.reply, t.tool])).toEqual([
      [0, 'tool_call', expected.shellTool],
      [1, 'finish', undefined],
    ]);
    expect(server.requests.every((r) => r.scenario === undefined || r.scenario === 'shell-edit')).toBe(true);
    expect(result.stdout + result.stderr).not.toContain(KEY);
  });

  test('completes the task in a network namespace that has nothing but loopback', async () => {
    const netns = `model-api-${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', netns]);
    const logFile = join(dir.home, '..', 'requests.jsonl');
    let api: { url: string; stop(): void } | undefined;
    try {
      execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      api = await startModelApiIn(netns, logFile);
      const result = await runAgent(kind, { baseUrl: api.url, scratch: dir, task: 'Create the file.', netns });
      expect({ code: result.code, output: describeOutput(result) }).toMatchObject({ code: 0 });
      expect(readFileSync(join(dir.repo, 'AGENT_EDIT.md'), 'utf8')).toBe(`edited by ${kind}\n`);
      expect(modelTurns(readRequestLog(logFile)).map((t) => t.reply)).toEqual(['tool_call', 'finish']);
    } finally {
      api?.stop();
      execFileSync('ip', ['netns', 'del', netns]);
    }
  });
});
