// The codec endpoint: lets the Temporal Web UI show decrypted payloads to an operator who has the key.
// The UI sends no credentials of its own, so the endpoint's token travels in the path (`/<token>/decode`);
// an Authorization: Bearer header works too, for other tools. CORS only for the configured UI origin.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Payload } from '@temporalio/common';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AesGcmCodec } from '../common/codec';
import { closeServer, HttpError, readBody, send, serveJson, tokenMatches } from './http';

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
  private readonly token: string;

  constructor(
    private readonly codec: AesGcmCodec,
    private readonly uiOrigin: string,
    private readonly logger: Logger,
  ) {
    this.token = codec.endpointToken();
  }

  private authorized(req: IncomingMessage, pathToken: string | undefined): boolean {
    const presented = pathToken ?? /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!presented) return false;
    return tokenMatches(presented, this.token);
  }

  private cors(res: ServerResponse): void {
    res.setHeader('access-control-allow-origin', this.uiOrigin);
    res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
    res.setHeader('access-control-allow-headers', 'content-type, x-namespace, authorization');
    res.setHeader('vary', 'origin');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.cors(res);
    const path = new URL(req.url ?? '/', 'http://codec').pathname;
    const match = /^(?:\/([0-9a-f]{64}))?\/(encode|decode)$/.exec(path);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    if (!match || req.method !== 'POST') throw new HttpError(404, 'POST /<token>/encode or /decode');
    if (!this.authorized(req, match[1])) throw new HttpError(401, 'codec endpoint token required');

    const raw = await readBody(req, MAX_BODY_BYTES);
    let body: z.output<typeof jsonPayloads>;
    try {
      body = jsonPayloads.parse(JSON.parse(raw.toString('utf8')));
    } catch {
      throw new HttpError(400, 'expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}');
    }
    const payloads = body.payloads.map(fromJson);
    try {
      const result = match[2] === 'encode' ? await this.codec.encode(payloads) : await this.codec.decode(payloads);
      send(res, 200, { payloads: result.map(toJson) });
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  }

  async listen(host: string, port: number): Promise<void> {
    this.server = await serveJson(host, port, (req, res) => this.handle(req, res), this.logger, 'codec endpoint');
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }
}
