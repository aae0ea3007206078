// The model API simulator on the wire: SSE framing and event order per provider, key check, faults, log, standalone main.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ModelApiServer, type ModelApiOptions } from '../simulators/model-api/server';

const KEY = 'sk-protocol-test-key-0123456789';
const CWD = '/work/repo';

let server: ModelApiServer;
async function serve(options: Partial<ModelApiOptions> = {}): Promise<void> {
  server = new ModelApiServer({ key: KEY, ...options });
  await server.listen(0, '127.0.0.1');
}
afterEach(() => server?.close());

interface SseEvent {
  event?: string;
  data: string;
}

/** Splits an SSE body into events, insisting on the framing: `event:`/`data:` lines, a blank line after each. */
function parseSse(body: string): SseEvent[] {
  expect(body.endsWith('\n\n')).toBe(true);
  return body
    .slice(0, -2)
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines[0]!.startsWith('event: ') ? lines.shift()!.slice('event: '.length) : undefined;
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith('data: ')).toBe(true);
      return { event, data: lines[0]!.slice('data: '.length) };
    });
}

const json = (e: SseEvent) => JSON.parse(e.data) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function post(path: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

const anthropicHeaders = (key = KEY) => ({
  'x-api-key': key,
  'anthropic-version': '2023-06-01',
  'user-agent': 'claude-cli/2.1.332 (external, sdk-cli)',
});
const openaiHeaders = (key = KEY, agent = 'codex_exec/0.171.0') => ({
  authorization: `Bearer ${key}`,
  'user-agent': agent,
});

const anthropicRequest = (stream: boolean, messages: unknown[]) => ({
  model: 'claude-test',
  max_tokens: 1024,
  stream,
  system: [{ type: 'text', text: `Primary working directory: ${CWD}` }],
  tools: [{ name: 'Write', input_schema: {} }, { name: 'Bash' }],
  messages,
});

describe('Anthropic Messages', () => {
  test('streams a tool_use turn as message_start, content blocks with input_json_delta, message_delta, message_stop', async () => {
    await serve();
    const res = await post(
      '/v1/messages',
      anthropicRequest(true, [{ role: 'user', content: 'go' }]),
      anthropicHeaders(),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSse(await res.text());
    for (const e of events) expect(json(e).type).toBe(e.event);
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      ...Array(3).fill('content_block_delta'),
      'content_block_stop',
      'content_block_start',
      ...Array(3).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const start = json(events[0]!).message;
    expect(start).toMatchObject({ type: 'message', role: 'assistant', model: 'claude-test', content: [] });
    expect(start.usage.input_tokens).toBeGreaterThan(0);
    const toolStart = json(events[7]!);
    expect(toolStart.content_block).toMatchObject({ type: 'tool_use', name: 'Write', input: {} });
    expect(toolStart.content_block.id).toMatch(/^toolu_/);
    const partial = events.slice(8, 11).map((e) => json(e).delta);
    for (const delta of partial) expect(delta.type).toBe('input_json_delta');
    expect(JSON.parse(partial.map((d) => d.partial_json).join(''))).toEqual({
      file_path: `${CWD}/AGENT_EDIT.md`,
      content: 'edited by claude\n',
    });
    const delta = json(events.at(-2)!);
    expect(delta.delta).toEqual({ stop_reason: 'tool_use', stop_sequence: null });
    expect(delta.usage.output_tokens).toBeGreaterThan(0);
  });

  test('answers the tool_result with a final text message (non-streaming)', async () => {
    await serve();
    const messages = [
      { role: 'user', content: 'go' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Write', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'File created' }] },
    ];
    const res = await post('/v1/messages', anthropicRequest(false, messages), anthropicHeaders());
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    expect(await res.json()).toMatchObject({
      type: 'message',
      content: [{ type: 'text', text: 'Created AGENT_EDIT.md.' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
    expect(server.requests[0]).toMatchObject({ step: 1, reply: 'finish', toolResult: 'File created', agent: 'claude' });
  });

  test('count_tokens, model listing and an unknown path in its shapes', async () => {
    await serve();
    const count = await post(
      '/v1/messages/count_tokens',
      anthropicRequest(false, [{ role: 'user', content: 'x' }]),
      anthropicHeaders(),
    );
    expect(await count.json()).toEqual({ input_tokens: expect.any(Number) });
    const models = await fetch(`${server.url}/v1/models`, { headers: anthropicHeaders() });
    expect(await models.json()).toMatchObject({ data: [{ type: 'model', id: 'agentlab-scripted' }], has_more: false });
    const unknown = await post('/v1/complete', {}, anthropicHeaders());
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });
});

describe('OpenAI Responses', () => {
  const request = (tools: unknown[]) => ({
    model: 'gpt-test',
    stream: true,
    input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: `<cwd>${CWD}</cwd> go` }] }],
    tools,
  });

  test('streams numbered events ending in response.completed with usage; a function call for the shell', async () => {
    await serve();
    const tools = [{ type: 'function', name: 'exec_command', parameters: {} }];
    const res = await post('/v1/responses', request(tools), openaiHeaders());
    const events = parseSse(await res.text());
    events.forEach((e, i) => expect(json(e)).toMatchObject({ type: e.event, sequence_number: i }));
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(3).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      ...Array(3).fill('response.function_call_arguments.delta'),
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(json(events[0]!).response).toMatchObject({ object: 'response', status: 'in_progress', output: [] });
    const args = events.filter((e) => e.event === 'response.function_call_arguments.delta').map((e) => json(e).delta);
    expect(JSON.parse(args.join(''))).toEqual({ cmd: "printf '%s' 'edited by codex\n' > 'AGENT_EDIT.md'" });
    const completed = json(events.at(-1)!).response;
    expect(completed.status).toBe('completed');
    expect(completed.output[1]).toMatchObject({
      type: 'function_call',
      name: 'exec_command',
      call_id: expect.stringMatching(/^call_/),
    });
    expect(completed.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
    expect(completed.usage.total_tokens).toBe(completed.usage.input_tokens + completed.usage.output_tokens);
  });

  test('a custom (freeform) apply_patch tool gets a custom_tool_call with a patch', async () => {
    await serve();
    const tools = [
      { type: 'function', name: 'exec_command' },
      { type: 'custom', name: 'apply_patch' },
    ];
    const events = parseSse(await (await post('/v1/responses', request(tools), openaiHeaders())).text());
    const input = events.filter((e) => e.event === 'response.custom_tool_call_input.delta').map((e) => json(e).delta);
    const patch = '*** Begin Patch\n*** Add File: AGENT_EDIT.md\n+edited by codex\n*** End Patch\n';
    expect(input.join('')).toBe(patch);
    expect(json(events.at(-1)!).response.output[1]).toMatchObject({
      type: 'custom_tool_call',
      name: 'apply_patch',
      input: patch,
    });
  });
});

describe('OpenAI Chat Completions', () => {
  const request = (streamUsage: boolean) => ({
    model: 'scripted',
    stream: true,
    ...(streamUsage && { stream_options: { include_usage: true } }),
    messages: [
      { role: 'system', content: `Working directory: ${CWD}` },
      { role: 'user', content: 'go' },
    ],
    tools: [{ type: 'function', function: { name: 'write', parameters: {} } }],
  });

  test('streams chat.completion.chunk deltas with tool_calls, the usage chunk when asked, then [DONE]', async () => {
    await serve();
    const res = await post('/v1/chat/completions', request(true), openaiHeaders(KEY, 'opencode/1.18.33'));
    const events = parseSse(await res.text());
    expect(events.every((e) => e.event === undefined)).toBe(true);
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map(json);
    for (const chunk of chunks) expect(chunk).toMatchObject({ object: 'chat.completion.chunk', id: chunks[0]!.id });
    expect(chunks[0]!.choices[0].delta.role).toBe('assistant');
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls[0]).toMatchObject({
      index: 0,
      id: expect.stringMatching(/^call_/),
      type: 'function',
      function: { name: 'write' },
    });
    expect(JSON.parse(calls.map((c) => c.function.arguments).join(''))).toEqual({
      filePath: `${CWD}/AGENT_EDIT.md`,
      content: 'edited by opencode\n',
    });
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe('tool_calls');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });

    const withoutUsage = parseSse(await (await post('/v1/chat/completions', request(false), openaiHeaders())).text());
    expect(
      withoutUsage
        .slice(0, -1)
        .map(json)
        .some((c) => c.usage),
    ).toBe(false);
  });

  test('a request without tools (a title generator) gets a plain answer', async () => {
    await serve();
    const body = { model: 'scripted', messages: [{ role: 'user', content: 'Generate a title' }] };
    const res = await post('/v1/chat/completions', body, openaiHeaders());
    expect(await res.json()).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { role: 'assistant', content: 'Create AGENT_EDIT.md' }, finish_reason: 'stop' }],
    });
    expect(server.requests[0]!.reply).toBe('side');
  });
});

describe('key check, faults and log', () => {
  test('missing or wrong key: 401 in each provider’s error shape; the log says which, never the key', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'model-api-log-'));
    try {
      await serve({ logFile: join(logDir, 'requests.jsonl') });
      const body = anthropicRequest(false, [{ role: 'user', content: 'x' }]);
      const missing = await post('/v1/messages', body, { 'anthropic-version': '2023-06-01' });
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({
        type: 'error',
        error: { type: 'authentication_error', message: 'x-api-key header is required' },
      });
      const wrong = await post('/v1/messages', body, anthropicHeaders('sk-wrong'));
      expect(await wrong.json()).toMatchObject({
        error: { type: 'authentication_error', message: 'invalid x-api-key' },
      });
      const openai = await post('/v1/responses', { model: 'm', input: 'x' }, openaiHeaders(`${KEY}x`));
      expect(openai.status).toBe(401);
      expect(await openai.json()).toEqual({
        error: {
          message: expect.stringMatching(/^Incorrect API key provided/),
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      });
      // The key as a Bearer token is accepted by the Anthropic side too (ANTHROPIC_AUTH_TOKEN).
      const bearer = await post('/v1/messages', body, { authorization: `Bearer ${KEY}` });
      expect(bearer.status).toBe(200);

      expect(server.requests.map((r) => r.auth)).toEqual(['missing', 'wrong', 'wrong', 'ok']);
      const logged = readFileSync(join(logDir, 'requests.jsonl'), 'utf8').trim().split('\n');
      expect(logged.map((line) => JSON.parse(line).auth)).toEqual(['missing', 'wrong', 'wrong', 'ok']);
      expect(logged.join('\n')).not.toContain(KEY);
    } finally {
      rmSync(logDir, { recursive: true, force: true });
    }
  });

  test('faults by request number: a 429 with retry-after, a 500, then normal answers', async () => {
    await serve({
      faults: [
        { mode: 429, fromRequest: 2, count: 1, retryAfterSeconds: 7 },
        { mode: 500, fromRequest: 3, count: 1 },
      ],
    });
    const send = () =>
      post('/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'x' }] }, openaiHeaders());
    const first = await send();
    const limited = await send();
    const failed = await send();
    const fourth = await send();
    expect([first.status, limited.status, failed.status, fourth.status]).toEqual([200, 429, 500, 200]);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(await limited.json()).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } });
    expect(failed.headers.get('retry-after')).toBeNull();
    expect(await failed.json()).toMatchObject({ error: { type: 'server_error' } });
    expect(server.requests.map((r) => r.modelRequest)).toEqual([1, 2, 3, 4]);

    server.setFaults([{ mode: 429 }]);
    const anthropic = await post(
      '/v1/messages',
      anthropicRequest(false, [{ role: 'user', content: 'x' }]),
      anthropicHeaders(),
    );
    expect(anthropic.status).toBe(429);
    expect(anthropic.headers.get('retry-after')).toBe('1');
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });

  test('hang: the request is accepted and never answered until the server closes', async () => {
    await serve({ faults: [{ mode: 'hang' }] });
    const pending = post('/v1/responses', { model: 'm', input: 'x' }, openaiHeaders()).then(
      () => 'answered',
      () => 'connection closed',
    );
    const early = await Promise.race([pending, new Promise((resolve) => setTimeout(() => resolve('waiting'), 1000))]);
    expect(early).toBe('waiting');
    expect(server.hangingCount).toBe(1);
    expect(server.requests).toMatchObject([{ status: 'hang', auth: 'ok' }]);
    await server.close();
    expect(await pending).toBe('connection closed');
  });

  test('a scenario the agent has no tool for is a 400 that says so', async () => {
    await serve({ scenario: 'shell-edit' });
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
      tools: [{ type: 'function', function: { name: 'read' } }],
    };
    const res = await post('/v1/chat/completions', body, openaiHeaders());
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: {
        message: expect.stringMatching(/^scripted model: the agent offered no shell tool .*; it offered: read$/),
      },
    });
  });
});

test('main.js serves standalone and prints where, not the key', async () => {
  const child = spawn(process.execPath, [join(__dirname, '../dist/simulators/model-api/main.js'), '--port', '0'], {
    env: { ...process.env, AGENTLAB_MODEL_API_KEY: KEY },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout! }).once('line', resolve),
    );
    expect(line).not.toContain(KEY);
    const { url, scenario } = JSON.parse(line) as { url: string; scenario: string };
    expect(scenario).toBe('create-file');
    const res = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(await res.json()).toMatchObject({ object: 'list', data: [{ id: 'agentlab-scripted', object: 'model' }] });
  } finally {
    child.kill('SIGTERM');
  }
});
