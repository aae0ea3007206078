// The guest API: the only door from a sandbox to the host. Translates guest calls into Updates and Signals.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  claimBootstrapUpdate,
  describeQuery,
  reportResultSignal,
  runnerCredentialHashQuery,
  type GuestClaimResponse,
  type GuestSecrets,
} from '../common/contract';
import { jobIdSchema } from '../common/schemas';
import { loadBundle, type SecretsPaths } from '../common/secrets';
import { isArtifactName } from '../common/job-folder';
import { isTerminalJobStatus } from '../common/states';
import { closeServer, HttpError, readBody, readJson, send, serveJson } from './http';
import { JobFiles } from './job-files';
import { RateLimiter } from './rate-limiter';
import { secretHash } from '../common/bootstrap';

export interface GuestApiOptions {
  client: Client;
  files: JobFiles;
  logger: Logger;
  secrets: SecretsPaths;
  maxArtifactBytes?: number;
  bootstrapRateLimit?: { burst: number; perMinute: number };
}

const MAX_LOG_CHUNK_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_ARTIFACT_BYTES = 256 * 1024 * 1024;

const bootstrapBody = z
  .object({
    token: z.string().min(16).max(256),
    jobId: jobIdSchema,
    vmid: z.number().int(),
    /** Made by the runner, so that a claim whose answer was lost can be repeated (older runners send none). */
    runnerCredential: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  })
  .strict();
const resultBody = z
  .object({
    status: z.enum(['COMPLETED', 'FAILED', 'TIMEOUT']),
    exitCode: z.number().int().nullable(),
    message: z.string().max(16_384),
  })
  .strict();
const heartbeatBody = z.object({ phase: z.string().max(64), message: z.string().max(4096).optional() }).strict();

/** Temporal being unreachable is the guest's cue to retry; a missing workflow is not. */
function temporalError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof WorkflowNotFoundError) return new HttpError(404, 'job not found or already finished');
  return new HttpError(503, 'control plane unavailable, retry');
}

export class GuestApi {
  private readonly credentialHashes = new Map<string, string>();
  private readonly bootstrapLimiter: RateLimiter;
  private server?: Server;

  constructor(private readonly options: GuestApiOptions) {
    const limit = options.bootstrapRateLimit ?? { burst: 10, perMinute: 10 };
    this.bootstrapLimiter = new RateLimiter(limit.burst, limit.perMinute);
  }

  /**
   * The bundle is decrypted only now, for a guest that just proved it holds the token. If it cannot be,
   * the job fails with the reason (the token is spent: the guest could never claim again).
   */
  private async secretsFor(jobId: string, bundle: string | undefined): Promise<GuestSecrets | null> {
    if (bundle === undefined) return null;
    try {
      const { version: _version, ...secrets } = await loadBundle(this.options.secrets, bundle);
      return secrets;
    } catch (err) {
      const message = `secrets bundle could not be delivered: ${(err as Error).message}`;
      this.options.logger.error({ jobId, bundle, reason: (err as Error).message }, 'secrets bundle not loadable');
      await this.handle(jobId)
        .signal(reportResultSignal, { status: 'FAILED', exitCode: null, message })
        .catch(() => undefined);
      throw new HttpError(500, message);
    }
  }

  private handle(jobId: string): WorkflowHandle {
    return this.options.client.workflow.getHandle(jobId);
  }

  private async authorize(req: IncomingMessage, jobId: string): Promise<void> {
    const presented = /^Bearer ([0-9a-f]{64})$/.exec(req.headers.authorization ?? '')?.[1];
    if (!presented) throw new HttpError(401, 'runner credential required');
    let expected = this.credentialHashes.get(jobId);
    if (!expected) {
      const fromWorkflow = await this.handle(jobId)
        .query(runnerCredentialHashQuery)
        .catch((err: unknown) => {
          throw temporalError(err);
        });
      if (!fromWorkflow) throw new HttpError(403, 'no runner credential issued for this job');
      expected = fromWorkflow;
      this.credentialHashes.set(jobId, expected);
    }
    const a = Buffer.from(secretHash(presented), 'hex');
    const b = Buffer.from(expected, 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b))
      throw new HttpError(403, 'runner credential not valid for this job');
  }

  /** A claim: the one-time token buys the job, its secrets and a runner credential. */
  private async bootstrap(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, bootstrapBody);
    const runnerCredential = body.runnerCredential ?? randomBytes(32).toString('hex');
    try {
      const response = await this.handle(body.jobId).executeUpdate(claimBootstrapUpdate, {
        args: [{ tokenHash: secretHash(body.token), runnerCredentialHash: secretHash(runnerCredential) }],
      });
      this.credentialHashes.set(body.jobId, secretHash(runnerCredential));
      const secrets = await this.secretsFor(body.jobId, response.secretsBundle);
      this.options.logger.info(
        { jobId: body.jobId, vmid: body.vmid, secretsBundle: response.secretsBundle ?? null },
        'bootstrap claimed',
      );
      return send(res, 200, { runnerCredential, job: response.job, secrets } satisfies GuestClaimResponse);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (err instanceof WorkflowUpdateFailedError) {
        this.options.logger.warn({ jobId: body.jobId, reason: err.cause?.message }, 'bootstrap claim rejected');
        throw new HttpError(403, 'bootstrap token invalid, expired or already used');
      }
      throw temporalError(err);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://guest-api');
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });

    if (method === 'POST' && url.pathname === '/v1/bootstrap') {
      // Only refused claims spend the address's budget: a guest claims once, a token guesser keeps failing
      // (and many guests may share an address behind NAT or, in the simulator, loopback).
      const source = req.socket.remoteAddress ?? 'unknown';
      const waitSeconds = this.bootstrapLimiter.wait(source);
      if (waitSeconds > 0) {
        this.options.logger.warn({ source }, 'bootstrap rate limit hit');
        throw new HttpError(
          429,
          'too many refused bootstrap attempts from this address',
          {},
          {
            'retry-after': waitSeconds,
          },
        );
      }
      try {
        return await this.bootstrap(req, res);
      } catch (err) {
        if (err instanceof HttpError && err.status >= 400 && err.status < 500) this.bootstrapLimiter.spend(source);
        throw err;
      }
    }

    const jobRoute = /^\/v1\/jobs\/([^/]+)\/(logs|heartbeat|result|artifacts)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!jobRoute) throw new HttpError(404, 'no such route');
    const [, jobId, action, name] = jobRoute as unknown as [string, string, string, string | undefined];
    if (!jobIdSchema.safeParse(jobId).success) throw new HttpError(400, 'invalid job id');
    await this.authorize(req, jobId);
    const { files } = this.options;

    if (method === 'POST' && action === 'logs') {
      const offset = Number(url.searchParams.get('offset'));
      if (!Number.isSafeInteger(offset) || offset < 0)
        throw new HttpError(400, 'offset must be a non-negative integer');
      const chunk = await readBody(req, MAX_LOG_CHUNK_BYTES);
      const { size, gap } = await files.appendLog(jobId, offset, chunk);
      return send(res, gap ? 409 : 200, { size });
    }
    if (method === 'POST' && action === 'heartbeat') {
      const beat = await readJson(req, heartbeatBody);
      await fs.mkdir(files.dir(jobId), { recursive: true });
      await fs.writeFile(files.heartbeatPath(jobId), JSON.stringify({ ...beat, at: new Date().toISOString() }));
      return send(res, 200, { ok: true });
    }
    if (method === 'PUT' && action === 'artifacts' && name) {
      const artifact = decodeURIComponent(name);
      // Only the name is the guest's fault (400, final); a failure to store it is ours (500, the runner retries).
      if (!isArtifactName(artifact)) throw new HttpError(400, `invalid artifact name "${artifact}"`);
      const body = await readBody(req, this.options.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES);
      return send(res, 200, await files.writeArtifact(jobId, artifact, body));
    }
    if (method === 'POST' && action === 'result') {
      const result = await readJson(req, resultBody);
      const handle = this.handle(jobId);
      try {
        const current = await handle.query(describeQuery);
        if (isTerminalJobStatus(current.jobStatus)) {
          if (current.jobStatus === result.status && current.exitCode === result.exitCode) {
            return send(res, 200, { accepted: true, duplicate: true });
          }
          throw new HttpError(409, `job already finished as ${current.jobStatus}`);
        }
        await handle.signal(reportResultSignal, result);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new HttpError(409, 'job already finished');
        throw temporalError(err);
      }
      this.options.logger.info({ jobId, status: result.status, exitCode: result.exitCode }, 'result reported');
      return send(res, 200, { accepted: true });
    }
    throw new HttpError(405, `${method} not allowed on ${url.pathname}`);
  }

  async listen(host: string, port: number): Promise<void> {
    this.server = await serveJson(host, port, (req, res) => this.route(req, res), this.options.logger, 'guest API');
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }
}
