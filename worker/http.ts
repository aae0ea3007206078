// What the worker's HTTP servers (guest API, codec endpoint, operator API) share: bounded bodies, JSON replies,
// errors that carry their status, and one way to start and stop a server.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { z } from 'zod';

/** Thrown by a handler: the client gets `status` and `{ error: message, ...body }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown> = {},
    readonly headers: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

const MAX_JSON_BYTES = 64 * 1024;

/** The whole body, or 413 as soon as it (or its declared length) exceeds `limit`. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `body exceeds ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A JSON body validated by `schema`; 400 naming each bad field otherwise. */
export async function readJson<T>(req: IncomingMessage, schema: z.ZodType<T>, limit = MAX_JSON_BYTES): Promise<T> {
  const raw = await readBody(req, limit);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  const result = schema.safeParse(parsed);
  if (!result.success)
    throw new HttpError(400, result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return result.data;
}

export function send(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string | number> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * Listens with `handler`; an HttpError becomes its reply, anything else a logged 500 (or a dropped
 * connection once the reply has started).
 */
export function serveJson(
  host: string,
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  logger: Logger,
  what: string,
): Promise<Server> {
  const server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      const httpError = err instanceof HttpError ? err : new HttpError(500, 'internal error');
      if (!(err instanceof HttpError)) logger.error({ err }, `${what} error`);
      if (!res.headersSent)
        send(res, httpError.status, { error: httpError.message, ...httpError.body }, httpError.headers);
      else res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export const closeServer = (server: Server | undefined): Promise<void> =>
  new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));

/** Constant-time: compares digests, so neither length nor prefix leaks through timing. */
export function tokenMatches(presented: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}
