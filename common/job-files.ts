// Reading a job's bulk data (guest log, artifacts) from its folder (common/job-folder.ts): the CLI on the worker's
// host and the worker's operator API (for CLIs elsewhere) both read through this.
import { existsSync, promises as fs } from 'node:fs';
import { isArtifactName, jobFolder } from './job-folder';

export interface ArtifactRecord {
  name: string;
  size: number;
  sha256: string;
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
