// Where the CLI reads a job's bulk data (guest log, artifacts): the worker host's data dir when it is this
// machine's (the embedded stack), else the operator API of the worker on the job's node.
import { request } from 'undici';
import type { AgentlabConfig } from '../common/config';
import { ArtifactNotFoundError, LocalJobFiles, type ArtifactRecord, type JobFilesReader } from '../common/job-files';
import { InvalidJobIdError, isArtifactName } from '../common/job-folder';
import { loadOperatorToken, OPERATOR_ROUTES } from '../common/operator-api';
import type { CliContext } from './context';
import { CliError, ExitCode, notFound, usageError } from './errors';

/** The `error` of the API's JSON reply; a proxy in between may answer with anything else. */
function errorText(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString('utf8')) as { error?: string }).error;
  } catch {
    return undefined;
  }
}

/** The operator API of one node's worker. */
class RemoteJobFiles implements JobFilesReader {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async get(path: string): Promise<Buffer> {
    const url = new URL(path, this.baseUrl).toString();
    const response = await request(url, { headers: { authorization: `Bearer ${this.token}` } }).catch((err: Error) => {
      throw new CliError(
        `cannot reach the operator API at ${this.baseUrl}: ${err.message}`,
        ExitCode.unavailable,
        'unavailable',
      );
    });
    const body = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode === 200) return body;
    const reason = errorText(body) ?? `HTTP ${response.statusCode}`;
    if (response.statusCode === 404) throw new ArtifactNotFoundError(reason);
    if (response.statusCode === 400) throw new InvalidJobIdError(reason);
    if (response.statusCode === 401) {
      throw new CliError(
        `the operator API at ${this.baseUrl} refused the token: ${reason}`,
        ExitCode.failed,
        'unauthorized',
      );
    }
    throw new CliError(`operator API at ${this.baseUrl}: ${reason}`, ExitCode.failed, 'error');
  }

  readLogFrom(jobId: string, offset: number): Promise<Buffer> {
    return this.get(OPERATOR_ROUTES.log(jobId, offset));
  }

  async listArtifacts(jobId: string): Promise<ArtifactRecord[]> {
    return (
      JSON.parse((await this.get(OPERATOR_ROUTES.artifacts(jobId))).toString('utf8')) as { artifacts: ArtifactRecord[] }
    ).artifacts;
  }

  readArtifact(jobId: string, name: string): Promise<Buffer> {
    return this.get(OPERATOR_ROUTES.artifact(jobId, name));
  }
}

/** The reader's errors as the CLI reports them (exit codes 2 and 3). */
class CliJobFiles implements JobFilesReader {
  constructor(private readonly inner: JobFilesReader) {}

  private async translate<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof InvalidJobIdError) throw usageError(err.message);
      if (err instanceof ArtifactNotFoundError) throw notFound(err.message);
      throw err;
    }
  }

  readLogFrom(jobId: string, offset: number): Promise<Buffer> {
    return this.translate(() => this.inner.readLogFrom(jobId, offset));
  }
  /** Names become paths under `--out`: whatever the source says, only plain artifact names pass. */
  async listArtifacts(jobId: string): Promise<ArtifactRecord[]> {
    return (await this.translate(() => this.inner.listArtifacts(jobId))).filter((a) => isArtifactName(a.name));
  }
  readArtifact(jobId: string, name: string): Promise<Buffer> {
    if (!isArtifactName(name)) throw usageError(`"${name}" is not an artifact name`);
    return this.translate(() => this.inner.readArtifact(jobId, name));
  }
}

/** Asks the worker of the job's node; a job not placed on a node yet has no files anywhere. */
class NodeRoutedJobFiles implements JobFilesReader {
  private remote?: RemoteJobFiles;

  constructor(
    private readonly ctx: CliContext,
    private readonly operatorApi: NonNullable<AgentlabConfig['operatorApi']>,
  ) {}

  private async remoteFor(jobId: string): Promise<RemoteJobFiles | undefined> {
    if (this.remote) return this.remote;
    // The query, not visibility: it is current the moment the job has a node. The operator API lives in a
    // worker anyway, so without one there is nothing to read from.
    const { node } = await this.ctx.jobs.describe(jobId);
    if (node === undefined) return undefined;
    const url = this.operatorApi.urls[node];
    if (!url) {
      throw new CliError(
        `job ${jobId} runs on node ${node}, which has no operatorApi.urls entry in ${this.ctx.config.source}`,
        ExitCode.usage,
        'config',
      );
    }
    this.remote = new RemoteJobFiles(url, loadOperatorToken(this.operatorApi.tokenFile));
    return this.remote;
  }

  async readLogFrom(jobId: string, offset: number): Promise<Buffer> {
    return (await (await this.remoteFor(jobId))?.readLogFrom(jobId, offset)) ?? Buffer.alloc(0);
  }
  async listArtifacts(jobId: string): Promise<ArtifactRecord[]> {
    return (await (await this.remoteFor(jobId))?.listArtifacts(jobId)) ?? [];
  }
  async readArtifact(jobId: string, name: string): Promise<Buffer> {
    const remote = await this.remoteFor(jobId);
    if (!remote) throw new ArtifactNotFoundError(`job ${jobId} has no artifact ${name}`);
    return remote.readArtifact(jobId, name);
  }
}

/** With `operatorApi.urls` configured, through the worker of the job's node; else from this machine's data dir. */
export function jobFilesFor(ctx: CliContext): JobFilesReader {
  const operatorApi = ctx.config.operatorApi;
  const routed = operatorApi && Object.keys(operatorApi.urls).length > 0;
  return new CliJobFiles(routed ? new NodeRoutedJobFiles(ctx, operatorApi) : new LocalJobFiles(ctx.config.dataDir));
}
