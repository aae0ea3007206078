// The operator API: a CLI on another machine reads job logs and artifacts through the worker that holds them
// (`agentlab job logs | artifacts | diff`). Read-only; every route needs the shared operator token.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ArtifactNotFoundError, LocalJobFiles } from '../common/job-files';
import { InvalidJobIdError } from '../common/job-folder';
import { OPERATOR_LOG_CHUNK_BYTES } from '../common/operator-api';
import { closeServer, HttpError, send, serveJson, tokenMatches } from './http';

const ROUTE = /^\/v1\/jobs\/([^/]+)\/(log|artifacts)(?:\/([^/]+))?$/;

export class OperatorApi {
  private server?: Server;
  private readonly files: LocalJobFiles;

  constructor(
    dataDir: string,
    private readonly token: string,
    private readonly logger: Logger,
  ) {
    this.files = new LocalJobFiles(dataDir);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://operator');
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    const presented = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!presented || !tokenMatches(presented, this.token)) throw new HttpError(401, 'operator token required');
    const match = ROUTE.exec(url.pathname);
    if (!match || req.method !== 'GET') throw new HttpError(404, 'no such route');
    const [, rawJobId, kind, rawName] = match;
    const jobId = decodePathPart(rawJobId!);
    try {
      if (kind === 'log' && rawName === undefined) {
        const offset = Number(url.searchParams.get('offset') ?? '0');
        if (!Number.isSafeInteger(offset) || offset < 0) throw new HttpError(400, 'offset: expected a byte offset');
        return sendBytes(res, await this.files.readLogFrom(jobId, offset, OPERATOR_LOG_CHUNK_BYTES));
      }
      if (kind === 'artifacts' && rawName === undefined) {
        return send(res, 200, { artifacts: await this.files.listArtifacts(jobId) });
      }
      if (kind === 'artifacts') return sendBytes(res, await this.files.readArtifact(jobId, decodePathPart(rawName!)));
      throw new HttpError(404, 'no such route');
    } catch (err) {
      if (err instanceof InvalidJobIdError) throw new HttpError(400, err.message);
      if (err instanceof ArtifactNotFoundError) throw new HttpError(404, err.message);
      throw err;
    }
  }

  async listen(host: string, port: number): Promise<void> {
    this.server = await serveJson(host, port, (req, res) => this.handle(req, res), this.logger, 'operator API');
    this.logger.info({ listen: `${host}:${port}` }, 'operator API listening');
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }
}

/** A malformed escape (`%zz`) is the caller's mistake: 400, not a 500 in the worker's log. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `malformed path segment "${part}"`);
  }
}

function sendBytes(res: ServerResponse, body: Buffer): void {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-store',
  });
  res.end(body);
}
