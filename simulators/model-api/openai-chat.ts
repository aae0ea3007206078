// OpenAI's Chat Completions API as OpenCode's OpenAI-compatible provider uses it: chat.completion.chunk deltas, [DONE].
import type { ServerResponse } from 'node:http';
import {
  agentFromUserAgent,
  findWorkingDirectory,
  jsonInput,
  textOf,
  type Conversation,
  type Turn,
} from './conversation';
import { bearerKey, openaiError } from './openai-errors';
import {
  isRecord,
  newId,
  pieces,
  sendJson,
  startEventStream,
  unixSeconds,
  writeEvent,
  type ProviderProtocol,
  type Usage,
} from './wire';

function parse(body: unknown, userAgent: string | undefined): Conversation {
  if (!isRecord(body) || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
    throw new Error("Missing required parameter: 'messages'.");
  }
  const messages = body.messages.filter(isRecord);
  const texts: string[] = [];
  const userTexts: string[] = [];
  let toolCallsMade = 0;
  for (const message of messages) {
    if (message.role === 'assistant' && Array.isArray(message.tool_calls)) toolCallsMade += message.tool_calls.length;
    if (message.role === 'tool') continue;
    const text = textOf(message.content);
    texts.push(text);
    if (message.role === 'user') userTexts.push(text);
  }
  const last = messages.at(-1);
  return {
    api: 'openai-chat',
    agent: agentFromUserAgent(userAgent),
    model: body.model,
    stream: body.stream === true,
    streamUsage: isRecord(body.stream_options) && body.stream_options.include_usage === true,
    tools: Array.isArray(body.tools)
      ? body.tools.filter(isRecord).map((t) => String(isRecord(t.function) ? t.function.name : t.type))
      : [],
    customTools: [],
    cwd: findWorkingDirectory(texts),
    userText: userTexts.join('\n'),
    toolCallsMade,
    lastToolResult: last?.role === 'tool' ? { text: textOf(last.content) } : undefined,
    requestChars: JSON.stringify(body).length,
  };
}

function respond(res: ServerResponse, conversation: Conversation, turn: Turn, usage: Usage): void {
  const id = newId('chatcmpl-');
  const created = unixSeconds();
  const toolCall = turn.toolCall && {
    id: newId('call_'),
    type: 'function',
    function: { name: turn.toolCall.name, arguments: JSON.stringify(jsonInput(turn.toolCall)) },
  };
  const finishReason = toolCall ? 'tool_calls' : 'stop';
  const usageBody = {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
  };
  const base = { id, created, model: conversation.model, system_fingerprint: null };
  const headers = { 'x-request-id': newId('req_') };
  if (!conversation.stream) {
    const message = {
      role: 'assistant',
      content: turn.text ?? null,
      refusal: null,
      ...(toolCall && { tool_calls: [toolCall] }),
    };
    const choice = { index: 0, message, logprobs: null, finish_reason: finishReason };
    return sendJson(res, 200, { ...base, object: 'chat.completion', choices: [choice], usage: usageBody }, headers);
  }

  startEventStream(res, headers);
  const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null) =>
    writeEvent(res, undefined, {
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason }],
    });
  chunk({ role: 'assistant', content: '', refusal: null });
  for (const content of pieces(turn.text ?? '')) chunk({ content });
  if (toolCall) {
    // The first tool_calls delta names the call; the following ones only append to its arguments.
    const { name, arguments: args } = toolCall.function;
    chunk({ tool_calls: [{ index: 0, id: toolCall.id, type: 'function', function: { name, arguments: '' } }] });
    for (const part of pieces(args)) chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] });
  }
  chunk({}, finishReason);
  if (conversation.streamUsage) {
    writeEvent(res, undefined, { ...base, object: 'chat.completion.chunk', choices: [], usage: usageBody });
  }
  writeEvent(res, undefined, '[DONE]');
  res.end();
}

export const openaiChat: ProviderProtocol = {
  api: 'openai-chat',
  keyOf: bearerKey,
  parse,
  respond,
  error: openaiError,
};
