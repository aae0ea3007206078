// OpenAI's Responses API as Codex uses it: POST /v1/responses, streamed as typed, numbered SSE events.
import type { ServerResponse } from 'node:http';
import { agentFromUserAgent, findWorkingDirectory, textOf, type Conversation, type Turn } from './conversation';
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

type Item = Record<string, unknown>;
const CALL_ITEMS = new Set(['function_call', 'custom_tool_call', 'local_shell_call']);
const RESULT_ITEMS = new Set(['function_call_output', 'custom_tool_call_output', 'local_shell_call_output']);

/** Tools from `tools` and from Codex's `additional_tools` input items; namespaces hold tools of their own. */
function toolsOf(tools: unknown): Item[] {
  if (!Array.isArray(tools)) return [];
  return tools.filter(isRecord).flatMap((tool) => (Array.isArray(tool.tools) ? toolsOf(tool.tools) : [tool]));
}

function parse(body: unknown, userAgent: string | undefined): Conversation {
  if (!isRecord(body) || typeof body.model !== 'string' || body.input === undefined) {
    throw new Error("Missing required parameter: 'input'.");
  }
  const items: Item[] = typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : [];
  if (Array.isArray(body.input)) items.push(...body.input.filter(isRecord));
  const texts = [typeof body.instructions === 'string' ? body.instructions : ''];
  const userTexts: string[] = [];
  const tools = toolsOf(body.tools);
  let toolCallsMade = 0;
  for (const item of items) {
    const type = item.type ?? 'message';
    if (CALL_ITEMS.has(String(type))) toolCallsMade++;
    if (type === 'additional_tools') tools.push(...toolsOf(item.tools));
    if (type !== 'message') continue;
    const text = textOf(item.content);
    texts.push(text);
    if (item.role === 'user') userTexts.push(text);
  }
  const last = items.at(-1);
  const output = last && RESULT_ITEMS.has(String(last.type)) ? last.output : undefined;
  return {
    api: 'openai-responses',
    agent: agentFromUserAgent(userAgent),
    model: body.model,
    stream: body.stream === true,
    tools: tools.map((t) => String(t.name ?? t.type)),
    customTools: tools.filter((t) => t.type === 'custom').map((t) => String(t.name)),
    cwd: findWorkingDirectory(texts),
    userText: userTexts.join('\n'),
    toolCallsMade,
    lastToolResult: output === undefined ? undefined : { text: typeof output === 'string' ? output : textOf(output) },
    requestChars: JSON.stringify(body).length,
  };
}

function outputItems(turn: Turn): Item[] {
  const items: Item[] = [];
  if (turn.text) {
    const part = { type: 'output_text', text: turn.text, annotations: [], logprobs: [] };
    items.push({ id: newId('msg_'), type: 'message', status: 'completed', role: 'assistant', content: [part] });
  }
  const call = turn.toolCall;
  if (call && typeof call.input === 'string') {
    items.push({ id: newId('ctc_'), type: 'custom_tool_call', status: 'completed', call_id: newId('call_'), ...call });
  } else if (call) {
    const args = JSON.stringify(call.input);
    items.push({
      id: newId('fc_'),
      type: 'function_call',
      status: 'completed',
      arguments: args,
      call_id: newId('call_'),
      name: call.name,
    });
  }
  return items;
}

function respond(res: ServerResponse, conversation: Conversation, turn: Turn, usage: Usage): void {
  const output = outputItems(turn);
  const response = {
    id: newId('resp_'),
    object: 'response',
    created_at: unixSeconds(),
    status: 'completed',
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: conversation.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: {
      input_tokens: usage.inputTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: usage.outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.inputTokens + usage.outputTokens,
    },
    user: null,
    metadata: {},
  };
  const headers = { 'x-request-id': newId('req_') };
  if (!conversation.stream) return sendJson(res, 200, response, headers);

  startEventStream(res, headers);
  let sequence = 0;
  const emit = (type: string, fields: Record<string, unknown>) =>
    writeEvent(res, type, { type, sequence_number: sequence++, ...fields });
  const pending = { ...response, status: 'in_progress', output: [], usage: null };
  emit('response.created', { response: pending });
  emit('response.in_progress', { response: pending });
  output.forEach((item, output_index) => {
    const at = { item_id: item.id, output_index };
    if (item.type === 'message') {
      const text = turn.text ?? '';
      emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } });
      const empty = { type: 'output_text', text: '', annotations: [], logprobs: [] };
      emit('response.content_part.added', { ...at, content_index: 0, part: empty });
      for (const delta of pieces(text))
        emit('response.output_text.delta', { ...at, content_index: 0, delta, logprobs: [] });
      emit('response.output_text.done', { ...at, content_index: 0, text, logprobs: [] });
      emit('response.content_part.done', { ...at, content_index: 0, part: { ...empty, text } });
    } else if (item.type === 'custom_tool_call') {
      const input = String(item.input);
      emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', input: '' } });
      for (const delta of pieces(input)) emit('response.custom_tool_call_input.delta', { ...at, delta });
      emit('response.custom_tool_call_input.done', { ...at, input });
    } else {
      const args = String(item.arguments);
      emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', arguments: '' } });
      for (const delta of pieces(args)) emit('response.function_call_arguments.delta', { ...at, delta });
      emit('response.function_call_arguments.done', { ...at, name: item.name, arguments: args });
    }
    emit('response.output_item.done', { output_index, item });
  });
  emit('response.completed', { response });
  res.end();
}

export const openaiResponses: ProviderProtocol = {
  api: 'openai-responses',
  keyOf: bearerKey,
  parse,
  respond,
  error: openaiError,
};
