// The codec endpoint: lets the Temporal Web UI show decrypted payloads to an operator who has the key.
// The UI sends no credentials of its own, so the endpoint's token travels in the path (`/<token>/decode`);
// an Authorization: Bearer header works too, for other tools. CORS only for the configured UI origin.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Payload } from '@temporalio/common';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AesGcmCodec } from '../common/codec';

const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Payloads in the proto3 JSON form the UI and `temporal` CLI use: bytes as base64. */
const jsonPayloads = z
  .object({
    payloads: z.array(
      z.object({ metadata: z.record(z.string(), z.string()).optional(), data: z.string().optional() }).loose(),
    ),
  })
  .loose();
type JsonPayload = z.output<typeof jsonPayloads>['payloads'][number];

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

export class CodecServer {
  private server?: Server;
  private readonly token: Buffer;

  constructor(
    private readonly codec: AesGcmCodec,
    private readonly uiOrigin: string,
    private readonly logger: Logger,
  ) {
    this.token = Buffer.from(codec.endpointToken());
  }

  private authorized(req: IncomingMessage, pathToken: string | undefined): boolean {
    const presented = pathToken ?? /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!presented) return false;
    const given = Buffer.from(presented);
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private cors(res: ServerResponse): void {
    res.setHeader('access-control-allow-origin', this.uiOrigin);
    res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
    res.setHeader('access-control-allow-headers', 'content-type, x-namespace, authorization');
    res.setHeader('vary', 'origin');
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.cors(res);
    const path = new URL(req.url ?? '/', 'http://codec').pathname;
    const match = /^(?:\/([0-9a-f]{64}))?\/(encode|decode)$/.exec(path);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    if (!match || req.method !== 'POST') return this.reply(res, 404, { error: 'POST /<token>/encode or /decode' });
    if (!this.authorized(req, match[1])) return this.reply(res, 401, { error: 'codec endpoint token required' });

    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) return this.reply(res, 413, { error: `body exceeds ${MAX_BODY_BYTES} bytes` });
      chunks.push(chunk as Buffer);
    }
    let body: z.output<typeof jsonPayloads>;
    try {
      body = jsonPayloads.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      return this.reply(res, 400, { error: 'expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}' });
    }
    const payloads = body.payloads.map(fromJson);
    try {
      const result = match[2] === 'encode' ? await this.codec.encode(payloads) : await this.codec.decode(payloads);
      this.reply(res, 200, { payloads: result.map(toJson) });
    } catch (err) {
      this.reply(res, 400, { error: (err as Error).message });
    }
  }

  listen(host: string, port: number): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err }, 'codec endpoint error');
        if (!res.headersSent) this.reply(res, 500, { error: 'internal error' });
      });
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
