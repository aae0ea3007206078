// A thin Proxmox VE REST client: token auth, form encoding, the {data} envelope, typed errors, UPID task waits.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetch, type Agent } from 'undici';
import { classifyPveError, PveError } from './errors';
import { createDispatcher, TlsTrustError } from './tls';

export type Params = Record<string, string | number | boolean | undefined>;

export interface ProxmoxClientOptions {
  /** e.g. https://pve.example:8006 (the /api2/json prefix is added here). */
  url: string;
  /** USER@REALM!TOKENID */
  tokenId: string;
  tokenSecret: string;
  caFile?: string;
  ca?: string;
  fingerprint?: string;
  /** Per request; agent calls alone can block ~8 s on a real node. */
  requestTimeoutMs?: number;
}

export interface TaskStatus {
  upid: string;
  node: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  type: string;
  id: string;
  user: string;
}

export interface WaitTaskOptions {
  /** Called on every poll: the activity passes its heartbeat so a long clone stays visibly alive. */
  onPoll?: () => void;
  timeoutMs?: number;
  initialIntervalMs?: number;
  maxIntervalMs?: number;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export function parseUpid(upid: string): { node: string; type: string; id: string; user: string } {
  const m = UPID_RE.exec(upid);
  if (!m) throw new PveError('other', `not a UPID: ${upid}`);
  return { node: m[1]!, type: m[6]!, id: m[7]!, user: m[8]! };
}

/** Path segments are always encoded here, so a UPID or node name can never change the route. */
export function apiPath(strings: TemplateStringsArray, ...values: (string | number)[]): string {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');
}

/**
 * Booleans as 0/1 (PVE rejects `true` in forms); `sshkeys` URL-encoded once before form encoding,
 * because PVE's `urlencoded` format checks the value after form decoding (proxmox-api.md §2.3).
 */
export function encodeParams(params: Params = {}): URLSearchParams {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    let text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    if (key === 'sshkeys') text = encodeURIComponent(text);
    form.append(key, text);
  }
  return form;
}

export class ProxmoxClient {
  private readonly base: string;
  private readonly auth: string;
  private readonly dispatcher: Agent;
  private readonly timeoutMs: number;

  constructor(options: ProxmoxClientOptions) {
    this.base = options.url.replace(/\/+$/, '') + '/api2/json';
    this.auth = `PVEAPIToken=${options.tokenId}=${options.tokenSecret}`;
    const ca = options.ca ?? (options.caFile ? readFileSync(options.caFile, 'utf8') : undefined);
    this.dispatcher = createDispatcher({ ca, caSource: options.caFile, fingerprint: options.fingerprint });
    this.timeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  get<T>(path: string, params?: Params): Promise<T> {
    return this.request<T>('GET', path, params);
  }
  post<T>(path: string, params?: Params): Promise<T> {
    return this.request<T>('POST', path, params);
  }
  put<T>(path: string, params?: Params): Promise<T> {
    return this.request<T>('PUT', path, params);
  }
  delete<T>(path: string, params?: Params): Promise<T> {
    return this.request<T>('DELETE', path, params);
  }

  /** No automatic retries: a timed-out clone may have started, so retrying is the caller's decision. */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, params?: Params): Promise<T> {
    const form = encodeParams(params);
    // GET and DELETE carry parameters in the query: PVE answers a DELETE body with 501.
    const inQuery = method === 'GET' || method === 'DELETE';
    const query = inQuery && [...form.keys()].length > 0 ? `?${form}` : '';
    const context = `${method} ${path}`;
    let response;
    try {
      response = await fetch(this.base + path + query, {
        method,
        dispatcher: this.dispatcher,
        headers: {
          Authorization: this.auth,
          ...(inQuery ? {} : { 'Content-Type': 'application/x-www-form-urlencoded' }),
        },
        body: inQuery ? undefined : form.toString(),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: Error };
      if (e.name === 'TimeoutError')
        throw new PveError('timeout', `no answer within ${this.timeoutMs} ms`, { context });
      if (e.cause instanceof TlsTrustError) throw new PveError('tls', e.cause.message, { context });
      throw new PveError('connection', e.cause?.message ?? e.message, { context });
    }
    const text = await response.text();
    let body: { data?: unknown; message?: string; errors?: Record<string, string> } | undefined;
    try {
      body = text ? (JSON.parse(text) as typeof body) : undefined;
    } catch {
      body = undefined; // 596 and 401 bodies are not JSON
    }
    if (response.ok) return (body?.data ?? null) as T;
    // PVE >= 5.2 http-server sends `message` in the body; older ones only the status line.
    const message = body?.message ?? response.statusText ?? `HTTP ${response.status}`;
    throw classifyPveError(message, { status: response.status, errors: body?.errors ?? undefined, context });
  }

  async taskStatus(upid: string): Promise<TaskStatus> {
    const { node } = parseUpid(upid); // a task is known only to the node that runs it
    return this.get<TaskStatus>(apiPath`/nodes/${node}/tasks/${upid}/status`);
  }

  /** Polls until the task stops; a task that ended with an error throws it, classified like an HTTP error. */
  async waitTask(upid: string, options: WaitTaskOptions = {}): Promise<TaskStatus> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    let interval = options.initialIntervalMs ?? 200;
    for (;;) {
      options.onPoll?.();
      const status = await this.taskStatus(upid);
      if (status.status === 'stopped') {
        const exit = status.exitstatus ?? 'unexpected status';
        if (exit === 'OK' || exit.startsWith('WARNINGS')) return status;
        throw classifyPveError(exit, { context: `task ${status.type} ${status.id}` });
      }
      if (Date.now() >= deadline) throw new PveError('timeout', `task ${upid} still running`, { context: 'waitTask' });
      await sleep(interval);
      interval = Math.min(interval * 1.5, options.maxIntervalMs ?? 2000);
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
