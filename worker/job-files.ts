// Bulk job data on the worker host, written into the job's folder (common/job-folder.ts): the guest
// log and the artifacts.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACT_INDEX, isArtifactName, jobFolder } from '../common/job-folder';

export class JobFiles {
  /** Appends are serialised per job so concurrent log posts cannot interleave. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly dataDir: string) {}

  dir(jobId: string): string {
    return jobFolder(this.dataDir, jobId).dir;
  }

  logPath(jobId: string): string {
    return jobFolder(this.dataDir, jobId).log;
  }

  heartbeatPath(jobId: string): string {
    return jobFolder(this.dataDir, jobId).heartbeat;
  }

  private serialise<T>(jobId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(jobId) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.queues.set(
      jobId,
      next.catch(() => undefined),
    );
    return next;
  }

  async logSize(jobId: string): Promise<number> {
    return fs.stat(this.logPath(jobId)).then(
      (s) => s.size,
      () => 0,
    );
  }

  /**
   * Appends the part of `chunk` (which starts at byte `offset` of the guest's log) that we do not hold yet.
   * Returns the size we hold, and whether the chunk left a gap (offset beyond our size).
   */
  appendLog(jobId: string, offset: number, chunk: Buffer): Promise<{ size: number; gap: boolean }> {
    return this.serialise(jobId, async () => {
      await fs.mkdir(this.dir(jobId), { recursive: true });
      const size = await this.logSize(jobId);
      if (offset > size) return { size, gap: true };
      const fresh = chunk.subarray(size - offset);
      if (fresh.length > 0) await fs.appendFile(this.logPath(jobId), fresh);
      return { size: size + fresh.length, gap: false };
    });
  }

  async writeArtifact(
    jobId: string,
    name: string,
    body: Buffer,
  ): Promise<{ name: string; size: number; sha256: string }> {
    if (!isArtifactName(name)) throw new Error(`invalid artifact name "${name}"`);
    const dir = jobFolder(this.dataDir, jobId).artifacts;
    await fs.mkdir(dir, { recursive: true });
    const sha256 = createHash('sha256').update(body).digest('hex');
    const tmp = join(dir, `.${name}.tmp`);
    await fs.writeFile(tmp, body);
    await fs.rename(tmp, join(dir, name));
    const record = { name, size: body.length, sha256 };
    await this.serialise(jobId, async () => {
      const index = await readIndex(dir);
      index[name] = record;
      // Write-then-rename: a worker killed mid-write must not leave an index that no later upload can read.
      const tmp = join(dir, `.${ARTIFACT_INDEX}.tmp`);
      await fs.writeFile(tmp, JSON.stringify(index, null, 2));
      await fs.rename(tmp, join(dir, ARTIFACT_INDEX));
    });
    return record;
  }
}

type ArtifactIndex = Record<string, { name: string; size: number; sha256: string }>;

/** The artifact index; one that cannot be read (written by an older worker that died mid-write) is rebuilt. */
async function readIndex(dir: string): Promise<ArtifactIndex> {
  const text = await fs.readFile(join(dir, ARTIFACT_INDEX), 'utf8').catch(() => '{}');
  try {
    return JSON.parse(text) as ArtifactIndex;
  } catch {
    const index: ArtifactIndex = {};
    for (const name of (await fs.readdir(dir)).filter(isArtifactName)) {
      const body = await fs.readFile(join(dir, name));
      index[name] = { name, size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
    }
    return index;
  }
}
