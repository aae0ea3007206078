// The Anthropic Messages API as Claude Code uses it: POST /v1/messages (SSE or JSON), count_tokens, model listing.
import type { ServerResponse } from 'node:http';
import {
  agentFromUserAgent,
  estimateTokens,
  findWorkingDirectory,
  jsonInput,
  textOf,
  type Conversation,
  type Turn,
} from './conversation';
import {
  isRecord,
  newId,
  pieces,
  sendJson,
  startEventStream,
  writeEvent,
  type ApiError,
  type ApiErrorKind,
  type ProviderProtocol,
  type Usage,
} from './wire';

type Block = Record<string, unknown>;
const blocksOf = (content: unknown): Block[] =>
  typeof content === 'string'
    ? [{ type: 'text', text: content }]
    : Array.isArray(content)
      ? content.filter(isRecord)
      : [];

function parse(body: unknown, userAgent: string | undefined): Conversation {
  if (!isRecord(body) || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
    throw new Error('messages: field required');
  }
  const messages = body.messages.filter(isRecord);
  const texts = [textOf(body.system)];
  const userTexts: string[] = [];
  let toolCallsMade = 0;
  for (const message of messages) {
    const blocks = blocksOf(message.content);
    if (message.role === 'assistant') toolCallsMade += blocks.filter((b) => b.type === 'tool_use').length;
    const text = textOf(blocks.filter((b) => b.type === 'text'));
    texts.push(text);
    if (message.role === 'user') userTexts.push(text);
  }
  const last = messages.at(-1);
  const result =
    last?.role === 'user'
      ? blocksOf(last.content)
          .filter((b) => b.type === 'tool_result')
          .at(-1)
      : undefined;
  return {
    api: 'anthropic-messages',
    agent: agentFromUserAgent(userAgent),
    model: body.model,
    stream: body.stream === true,
    tools: Array.isArray(body.tools) ? body.tools.filter(isRecord).map((t) => String(t.name)) : [],
    customTools: [],
    cwd: findWorkingDirectory(texts),
    userText: userTexts.join('\n'),
    toolCallsMade,
    lastToolResult: result && { text: textOf(result.content), isError: result.is_error === true },
    requestChars: JSON.stringify(body).length,
  };
}

function contentOf(turn: Turn): Block[] {
  const content: Block[] = [];
  if (turn.text) content.push({ type: 'text', text: turn.text });
  const call = turn.toolCall;
  if (call) content.push({ type: 'tool_use', id: newId('toolu_'), name: call.name, input: jsonInput(call) });
  return content;
}

function respond(res: ServerResponse, conversation: Conversation, turn: Turn, usage: Usage): void {
  const content = contentOf(turn);
  const message = {
    id: newId('msg_'),
    type: 'message',
    role: 'assistant',
    model: conversation.model,
    content,
    stop_reason: turn.toolCall ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: usage.inputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: usage.outputTokens,
      service_tier: 'standard',
    },
  };
  const headers = { 'request-id': newId('req_') };
  if (!conversation.stream) return sendJson(res, 200, message, headers);

  startEventStream(res, headers);
  // message_start carries the message with empty content and the input usage; output usage comes in message_delta.
  writeEvent(res, 'message_start', {
    type: 'message_start',
    message: { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } },
  });
  writeEvent(res, 'ping', { type: 'ping' });
  content.forEach((block, index) => {
    const isTool = block.type === 'tool_use';
    const start = isTool ? { ...block, input: {} } : { type: 'text', text: '' };
    writeEvent(res, 'content_block_start', { type: 'content_block_start', index, content_block: start });
    const deltas = isTool
      ? pieces(JSON.stringify(block.input)).map((partial_json) => ({ type: 'input_json_delta', partial_json }))
      : pieces(String(block.text)).map((text) => ({ type: 'text_delta', text }));
    for (const delta of deltas) writeEvent(res, 'content_block_delta', { type: 'content_block_delta', index, delta });
    writeEvent(res, 'content_block_stop', { type: 'content_block_stop', index });
  });
  writeEvent(res, 'message_delta', {
    type: 'message_delta',
    delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { output_tokens: usage.outputTokens },
  });
  writeEvent(res, 'message_stop', { type: 'message_stop' });
  res.end();
}

const ERRORS: Record<ApiErrorKind, { status: number; type: string; message: string }> = {
  missing_key: { status: 401, type: 'authentication_error', message: 'x-api-key header is required' },
  wrong_key: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' },
  rate_limited: {
    status: 429,
    type: 'rate_limit_error',
    message:
      'Number of requests has exceeded your per-minute rate limit (https://docs.claude.com/en/api/rate-limits); ' +
      'see the response headers for current usage. Please try again later.',
  },
  server_error: { status: 500, type: 'api_error', message: 'Internal server error' },
  bad_request: { status: 400, type: 'invalid_request_error', message: 'Invalid request' },
  not_found: { status: 404, type: 'not_found_error', message: 'Not found' },
};

function error(kind: ApiErrorKind, message?: string): ApiError {
  const e = ERRORS[kind];
  const requestId = newId('req_');
  return {
    status: e.status,
    body: { type: 'error', error: { type: e.type, message: message ?? e.message }, request_id: requestId },
    headers: { 'request-id': requestId },
  };
}

export const anthropicMessages: ProviderProtocol = {
  api: 'anthropic-messages',
  // The API takes `x-api-key`; Claude Code sends `Authorization: Bearer` instead when given ANTHROPIC_AUTH_TOKEN.
  keyOf: (headers) => {
    const key = headers['x-api-key'];
    if (typeof key === 'string') return key;
    const auth = headers.authorization;
    return typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
  },
  parse,
  respond,
  error,
};

/** POST /v1/messages/count_tokens: the estimate the server itself bills with. */
export function countTokensResponse(conversation: Conversation): unknown {
  return { input_tokens: estimateTokens(conversation.requestChars) };
}

/** GET /v1/models in Anthropic's shape: only the scripted model(s). */
export function anthropicModelList(models: string[]): unknown {
  const data = models.map((id) => ({
    type: 'model',
    id,
    display_name: id,
    created_at: '2026-01-01T00:00:00Z',
  }));
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
