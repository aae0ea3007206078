// What every provider protocol implements, and the SSE framing and ids they share.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ApiKind, Conversation, Turn } from './conversation';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** Errors the server answers, each provider rendering them with its own status text and body. */
export type ApiErrorKind = 'missing_key' | 'wrong_key' | 'rate_limited' | 'server_error' | 'bad_request' | 'not_found';

export interface ApiError {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface ProviderProtocol {
  api: ApiKind;
  /** The API key as this provider's clients send it, or undefined when absent. */
  keyOf(headers: Record<string, string | string[] | undefined>): string | undefined;
  /** Reads a request body (already JSON-parsed) into the provider-neutral view; throws on a malformed one. */
  parse(body: unknown, userAgent: string | undefined): Conversation;
  /** Writes the turn as this provider's response: SSE when the request asked to stream, else one JSON document. */
  respond(res: ServerResponse, conversation: Conversation, turn: Turn, usage: Usage): void;
  error(kind: ApiErrorKind, message?: string): ApiError;
}

/** Ids shaped like the providers' own (`msg_…`, `toolu_…`, `resp_…`, `call_…`, `chatcmpl-…`). */
export function newId(prefix: string): string {
  return prefix + randomBytes(18).toString('base64url');
}

export function startEventStream(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...headers,
  });
}

/** One SSE event: `event:` only where the provider names its events (Anthropic, Responses; not Chat Completions). */
export function writeEvent(res: ServerResponse, event: string | undefined, data: unknown): void {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  res.write(`${event === undefined ? '' : `event: ${event}\n`}data: ${payload}\n\n`);
}

/** Streams a string in a few pieces, as a model does, so that clients really have to join deltas. */
export function pieces(text: string, count = 3): string[] {
  if (text.length === 0) return [];
  const size = Math.ceil(text.length / count);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const unixSeconds = (): number => Math.floor(Date.now() / 1000);
