// The scripted model API: HTTP server, key check, routing to the three protocols, request log and fault injection.
import { appendFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate } from 'node:zlib';
import type { AgentKind } from '../../common/agents';
import { anthropicMessages, anthropicModelList, countTokensResponse } from './anthropic';
import { agentFromUserAgent, estimateTokens, ScenarioError, type ApiKind } from './conversation';
import { openaiChat } from './openai-chat';
import { openaiModelList } from './openai-errors';
import { openaiResponses } from './openai-responses';
import { BUILT_IN_SCENARIOS, findScenario, nextTurn, scenarioForTask, type Scenario, type TurnKind } from './scenarios';
import { sendJson, type ApiErrorKind, type ProviderProtocol, type Usage } from './wire';

export type FaultMode = 429 | 500 | 'hang';

/** Makes model requests fail: all of them, or `count` of them from the `fromRequest`-th (1-based) on. */
export interface Fault {
  mode: FaultMode;
  fromRequest?: number;
  count?: number;
  /** `retry-after` in seconds: 1 by default on a 429, none on a 500 unless given. */
  retryAfterSeconds?: number;
}

export interface ModelApiOptions {
  /** The only API key accepted, as `x-api-key` (Anthropic) or `Authorization: Bearer` (both). */
  key: string;
  /** The scenario a task runs unless its text says `scenario:<name>`; default `create-file`. */
  scenario?: string;
  scenarios?: Scenario[];
  faults?: Fault[];
  /** Also append each log entry to this file, one JSON document a line. */
  logFile?: string;
  /** What GET /v1/models lists. */
  models?: string[];
}

/** One request as the server saw it: never the key, only whether it was right. */
export interface LoggedRequest {
  seq: number;
  at: string;
  method: string;
  path: string;
  api?: ApiKind;
  agent: AgentKind | 'unknown';
  userAgent?: string;
  auth: 'ok' | 'missing' | 'wrong';
  /** 1-based among the authenticated model requests (what faults count). */
  modelRequest?: number;
  model?: string;
  stream?: boolean;
  tools?: string[];
  scenario?: string;
  /** Tool calls already in the conversation: the scenario step answered. */
  step?: number;
  /** The start of the tool result the request ended with. */
  toolResult?: string;
  toolResultIsError?: boolean;
  status: number | 'hang';
  reply?: TurnKind | 'models' | 'count_tokens' | 'error';
  /** The tool the reply called. */
  tool?: string;
  usage?: Usage;
  error?: string;
}

interface Route {
  protocol: ProviderProtocol;
  handle: 'turn' | 'count_tokens' | 'models';
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const DECODERS: Record<string, (input: Buffer) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress),
};

export class ModelApiServer {
  readonly requests: LoggedRequest[] = [];
  private faults: Fault[];
  private readonly scenarios: Scenario[];
  private readonly scenario: Scenario;
  private modelRequests = 0;
  private readonly hanging = new Set<ServerResponse>();
  private server?: Server;
  private address?: AddressInfo;

  constructor(private readonly options: ModelApiOptions) {
    if (!options.key) throw new Error('the model API needs a key to check');
    this.scenarios = options.scenarios ?? BUILT_IN_SCENARIOS;
    this.scenario = findScenario(this.scenarios, options.scenario ?? 'create-file');
    this.faults = options.faults ?? [];
  }

  /** Replaces the faults; request numbers keep counting from the server's start. */
  setFaults(faults: Fault[]): void {
    this.faults = faults;
  }

  get scenarioName(): string {
    return this.scenario.name;
  }

  /** Requests accepted in hang mode and still unanswered. */
  get hangingCount(): number {
    return this.hanging.size;
  }

  get url(): string {
    if (!this.address) throw new Error('the model API is not listening');
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address;
    return `http://${host}:${this.address.port}`;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: String(err) } });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.address = server.address() as AddressInfo;
    return this.url;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private route(method: string, path: string, anthropicClient: boolean): Route | undefined {
    if (method === 'POST' && path === '/v1/messages') return { protocol: anthropicMessages, handle: 'turn' };
    if (method === 'POST' && path === '/v1/messages/count_tokens') {
      return { protocol: anthropicMessages, handle: 'count_tokens' };
    }
    if (method === 'POST' && path === '/v1/responses') return { protocol: openaiResponses, handle: 'turn' };
    if (method === 'POST' && path === '/v1/chat/completions') return { protocol: openaiChat, handle: 'turn' };
    if (method === 'GET' && path === '/v1/models') {
      return { protocol: anthropicClient ? anthropicMessages : openaiResponses, handle: 'models' };
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://model-api').pathname;
    const userAgent = req.headers['user-agent'];
    const anthropicClient = req.headers['anthropic-version'] !== undefined || req.headers['x-api-key'] !== undefined;
    const route = this.route(method, path, anthropicClient);
    const protocol = route?.protocol ?? (anthropicClient ? anthropicMessages : openaiResponses);
    const presented = protocol.keyOf(req.headers);
    const entry: LoggedRequest = {
      seq: this.requests.length + 1,
      at: new Date().toISOString(),
      method,
      path,
      api: route?.protocol.api,
      agent: agentFromUserAgent(userAgent),
      userAgent,
      auth: presented === undefined ? 'missing' : presented === this.options.key ? 'ok' : 'wrong',
      status: 200,
    };
    const fail = (kind: ApiErrorKind, message?: string, headers: Record<string, string> = {}) => {
      const error = protocol.error(kind, message);
      Object.assign(entry, { status: error.status, reply: 'error', error: message ?? kind });
      sendJson(res, error.status, error.body, { ...error.headers, ...headers });
    };
    try {
      const body = await readBody(req);
      if (!route) return fail('not_found', `Invalid URL (${method} ${path})`);
      if (entry.auth !== 'ok') return fail(entry.auth === 'missing' ? 'missing_key' : 'wrong_key');
      if (route.handle === 'models') {
        const models = this.options.models ?? ['agentlab-scripted'];
        entry.reply = 'models';
        return sendJson(res, 200, anthropicClient ? anthropicModelList(models) : openaiModelList(models));
      }

      entry.modelRequest = ++this.modelRequests;
      const fault = this.activeFault(entry.modelRequest);
      if (fault?.mode === 'hang') {
        // Accepted and never answered: the client sees a connection that stays open with nothing on it.
        entry.status = 'hang';
        this.hanging.add(res);
        res.once('close', () => this.hanging.delete(res));
        return;
      }
      if (fault) {
        // A 429 always says when to come back; a 500 only when the fault says so (clients then skip their backoff).
        const retryAfter = fault.retryAfterSeconds ?? (fault.mode === 429 ? 1 : undefined);
        const headers: Record<string, string> = retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) };
        return fail(fault.mode === 429 ? 'rate_limited' : 'server_error', undefined, headers);
      }

      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        return fail('bad_request', 'The request body is not valid JSON.');
      }
      const conversation = protocol.parse(json, userAgent);
      Object.assign(entry, {
        model: conversation.model,
        stream: conversation.stream,
        tools: conversation.tools,
        step: conversation.toolCallsMade,
        toolResult: conversation.lastToolResult?.text.slice(0, 300),
        toolResultIsError: conversation.lastToolResult?.isError,
      });
      if (route.handle === 'count_tokens') {
        entry.reply = 'count_tokens';
        return sendJson(res, 200, countTokensResponse(conversation));
      }
      const scenario = scenarioForTask(this.scenarios, this.scenario, conversation.userText);
      const { kind, turn } = nextTurn(scenario, conversation);
      const usage = {
        inputTokens: estimateTokens(conversation.requestChars),
        outputTokens: estimateTokens(JSON.stringify(turn).length),
      };
      Object.assign(entry, { scenario: scenario.name, reply: kind, tool: turn.toolCall?.name, usage });
      protocol.respond(res, conversation, turn, usage);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ScenarioError) return fail('bad_request', `scripted model: ${message}`);
      // A body too large, in an unknown encoding, or a request the protocol cannot read.
      if (!res.headersSent) return fail('bad_request', message);
      throw err;
    } finally {
      this.record(entry);
    }
  }

  private activeFault(request: number): Fault | undefined {
    return this.faults.find((f) => {
      const from = f.fromRequest ?? 1;
      return request >= from && (f.count === undefined || request < from + f.count);
    });
  }

  private record(entry: LoggedRequest): void {
    // Whatever the agent echoed (a tool result, a header) is scrubbed of the key before it is kept anywhere.
    const scrubbed = JSON.parse(JSON.stringify(entry).replaceAll(this.options.key, '[REDACTED]')) as LoggedRequest;
    this.requests.push(scrubbed);
    if (this.options.logFile) appendFileSync(this.options.logFile, JSON.stringify(scrubbed) + '\n');
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  const encoding = req.headers['content-encoding'];
  if (!encoding || encoding === 'identity') return raw;
  const decode = DECODERS[encoding];
  if (!decode) throw new Error(`unsupported content-encoding ${encoding}`);
  return decode(raw);
}
