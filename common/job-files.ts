// Reading a job's bulk data (guest log, artifacts) from a data dir: the CLI on the worker's host and the
// worker's operator API (for CLIs elsewhere) both read through this.
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { jobIdSchema } from './schemas';

const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** The worker's own list of a job's artifacts, beside them: never an artifact itself. */
export const ARTIFACT_INDEX = 'index.json';

/**
 * A job's folder, `<dataDir>/jobs/<jobId>/`: the one place that knows its layout. The worker writes it (guest
 * API), the CLI on the worker's host and the operator API read it. The ID is validated: never a path.
 */
export function jobFolder(dataDir: string, jobId: string) {
  if (!jobIdSchema.safeParse(jobId).success) throw new InvalidJobIdError(`job id "${jobId}" is not valid`);
  const dir = join(dataDir, 'jobs', jobId);
  const artifacts = join(dir, 'artifacts');
  return {
    dir,
    /** The guest's log, as shipped by its runner. */
    log: join(dir, 'agent.log'),
    /** The runner's last heartbeat: its mtime is when the runner was last heard. */
    heartbeat: join(dir, 'guest-heartbeat.json'),
    artifacts,
    artifactIndex: join(artifacts, ARTIFACT_INDEX),
    artifact: (name: string) => join(artifacts, name),
  };
}

/** Where the worker keeps a job's last guest heartbeat (its mtime is when the runner was last heard). */
export const guestHeartbeatPath = (dataDir: string, jobId: string): string => jobFolder(dataDir, jobId).heartbeat;

/** What a guest may call an artifact: a plain file name, never a path, never the index. */
export function isArtifactName(name: string): boolean {
  return ARTIFACT_NAME.test(name) && !name.includes('..') && name !== ARTIFACT_INDEX;
}

export interface ArtifactRecord {
  name: string;
  size: number;
  sha256: string;
}

export class InvalidJobIdError extends Error {
  override name = 'InvalidJobIdError';
}
export class ArtifactNotFoundError extends Error {
  override name = 'ArtifactNotFoundError';
}

/** What `job logs`, `job artifacts` and `job diff` read, wherever the files are. */
export interface JobFilesReader {
  /** The log from `offset` to its current end (empty when there is nothing new, or no log yet). */
  readLogFrom(jobId: string, offset: number): Promise<Buffer>;
  listArtifacts(jobId: string): Promise<ArtifactRecord[]>;
  readArtifact(jobId: string, name: string): Promise<Buffer>;
}

export class LocalJobFiles implements JobFilesReader {
  constructor(private readonly dataDir: string) {}

  async readLogFrom(jobId: string, offset: number, maxBytes = Infinity): Promise<Buffer> {
    const handle = await fs.open(jobFolder(this.dataDir, jobId).log, 'r').catch(() => undefined);
    if (!handle) return Buffer.alloc(0);
    try {
      const { size } = await handle.stat();
      if (size <= offset) return Buffer.alloc(0);
      const chunk = Buffer.alloc(Math.min(size - offset, maxBytes));
      await handle.read(chunk, 0, chunk.length, offset);
      return chunk;
    } finally {
      await handle.close();
    }
  }

  /** Entries whose name is not an artifact name are dropped: the index is only trusted as far as that. */
  async listArtifacts(jobId: string): Promise<ArtifactRecord[]> {
    const index = jobFolder(this.dataDir, jobId).artifactIndex;
    if (!existsSync(index)) return [];
    let entries: unknown[];
    try {
      entries = Object.values(JSON.parse(await fs.readFile(index, 'utf8')) as Record<string, unknown>);
    } catch {
      return [];
    }
    return entries.filter(
      (e): e is ArtifactRecord =>
        typeof (e as ArtifactRecord)?.name === 'string' && isArtifactName((e as ArtifactRecord).name),
    );
  }

  /** Only a name the index lists: the index is the allowlist, so no path of the caller's is ever opened. */
  async readArtifact(jobId: string, name: string): Promise<Buffer> {
    const artifact = (await this.listArtifacts(jobId)).find((a) => a.name === name);
    if (!artifact) throw new ArtifactNotFoundError(`job ${jobId} has no artifact ${name}`);
    return fs.readFile(jobFolder(this.dataDir, jobId).artifact(artifact.name));
  }
}
