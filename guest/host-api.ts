// HTTP to the host: one exchange, the retrying call, and the guest API's job routes.
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobResult } from '../common/contract';
import { PermanentError } from './errors';
import { log } from './log';

const REQUEST_TIMEOUT_MS = 60_000;
const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 5000;

interface RequestInit {
  body?: string | Buffer;
  headers?: Record<string, string>;
  timeoutMs: number;
}

/**
 * One HTTP exchange with node:http(s). Not fetch: loading fetch's implementation (undici and its WASM
 * parser) cost the runner ~90 ms of CPU, about a third of all it spends on a short job.
 */
export function request(
  method: string,
  url: string,
  { body, headers = {}, timeoutMs }: RequestInit,
): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  // node:https (and TLS) loads only for a host that is reached over https.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const transport = target.protocol === 'https:' ? (require('node:https') as typeof http) : http;
  const payload = body === undefined ? undefined : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = transport.request(
      target,
      {
        method,
        headers: payload ? { ...headers, 'content-length': payload.length } : headers,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}

const retryDeadlineMs = (): number => {
  const seconds = Number(process.env.AGENTLAB_RETRY_DEADLINE_SECONDS);
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : 600) * 1000;
};

/** The host's answer: its status and its JSON body (an object; `error` holds a non-JSON body's start). */
export interface HostResponse {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One call to the host. Connection errors, 5xx and 429 are retried with exponential backoff until the
 * retry deadline (the host's worker may be restarting); any other status is returned to the caller.
 */
export async function call(
  method: string,
  url: string,
  { body, json, headers = {} }: { body?: Buffer; json?: unknown; headers?: Record<string, string> } = {},
): Promise<HostResponse> {
  const where = `${method} ${new URL(url).pathname}`;
  const deadline = Date.now() + retryDeadlineMs();
  let delay = BACKOFF_START_MS;
  for (;;) {
    let problem: string;
    try {
      const init: RequestInit & { headers: Record<string, string> } = {
        headers: { ...headers },
        timeoutMs: REQUEST_TIMEOUT_MS,
      };
      if (json !== undefined) {
        init.body = JSON.stringify(json);
        init.headers['content-type'] = 'application/json';
      } else if (body !== undefined) {
        init.body = body;
        init.headers['content-type'] = 'application/octet-stream';
      }
      const res = await request(method, url, init);
      const text = res.text;
      if (res.status < 500 && res.status !== 429) {
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch {
          parsed = { error: text.slice(0, 200) };
        }
        return {
          status: res.status,
          body: parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {},
        };
      }
      problem = `HTTP ${res.status}`;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      problem = e.code || e.message || String(err);
    }
    if (Date.now() + delay > deadline) throw new Error(`${where} failed for ${retryDeadlineMs() / 1000}s: ${problem}`);
    log('warn', 'host call failed, retrying', { call: where, problem, retryInMs: delay });
    await sleep(delay);
    delay = Math.min(delay * 2, BACKOFF_MAX_MS);
  }
}

export const refusal = (what: string, res: HostResponse): string =>
  `${what}: HTTP ${res.status}${res.body.error ? ` ${String(res.body.error)}` : ''}`;

/** The guest API's job routes, authenticated with the runner credential. */
export class JobApi {
  private readonly base: string;
  private readonly auth: Record<string, string>;

  constructor(controllerUrl: string, jobId: string, credential: string) {
    this.base = `${controllerUrl.replace(/\/+$/, '')}/v1/jobs/${encodeURIComponent(jobId)}`;
    this.auth = { authorization: `Bearer ${credential}` };
  }

  /** Returns the number of bytes the host now holds (a 409 tells us where to resend from). */
  async postLog(offset: number, chunk: Buffer): Promise<number> {
    const res = await call('POST', `${this.base}/logs?offset=${offset}`, { body: chunk, headers: this.auth });
    if (res.status !== 200 && res.status !== 409) throw new PermanentError(refusal('log upload refused', res));
    const size = res.body.size;
    if (!Number.isSafeInteger(size) || (size as number) < 0)
      throw new PermanentError('log upload: the host sent no valid size');
    return size as number;
  }

  /** Best effort: one try, short timeout, errors ignored. */
  async heartbeat(phase: string, message?: string): Promise<void> {
    try {
      await request('POST', `${this.base}/heartbeat`, {
        headers: { ...this.auth, 'content-type': 'application/json' },
        body: JSON.stringify(message ? { phase, message } : { phase }),
        timeoutMs: 5000,
      });
    } catch {
      /* the next heartbeat will do */
    }
  }

  async putArtifact(name: string, content: Buffer): Promise<void> {
    const url = `${this.base}/artifacts/${encodeURIComponent(name)}`;
    const res = await call('PUT', url, { body: content, headers: this.auth });
    if (res.status !== 200) throw new PermanentError(refusal(`artifact ${name} refused`, res));
  }

  /** Returns false when the host says the job is already finished (409): that is final too. */
  async postResult(result: JobResult): Promise<boolean> {
    const res = await call('POST', `${this.base}/result`, { json: result, headers: this.auth });
    if (res.status === 409) return false;
    if (res.status !== 200) throw new PermanentError(refusal('result refused', res));
    return true;
  }
}
