// Reads a job's bulk data (guest log, artifacts) from the worker host's data dir.
// The CLI and the worker share it in the embedded stack; a remote CLI needs the same dataDir mounted.
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { AgentlabConfig } from '../common/config';
import { jobIdSchema } from '../common/schemas';
import { notFound, usageError } from './errors';

export interface ArtifactRecord {
  name: string;
  size: number;
  sha256: string;
}

export function jobDir(config: AgentlabConfig, jobId: string): string {
  if (!jobIdSchema.safeParse(jobId).success) throw usageError(`job id "${jobId}" is not valid`);
  return join(config.dataDir, 'jobs', jobId);
}

export async function readLogFrom(config: AgentlabConfig, jobId: string, offset: number): Promise<Buffer> {
  const path = join(jobDir(config, jobId), 'agent.log');
  const handle = await fs.open(path, 'r').catch(() => undefined);
  if (!handle) return Buffer.alloc(0);
  try {
    const { size } = await handle.stat();
    if (size <= offset) return Buffer.alloc(0);
    const chunk = Buffer.alloc(size - offset);
    await handle.read(chunk, 0, chunk.length, offset);
    return chunk;
  } finally {
    await handle.close();
  }
}

export async function listArtifacts(config: AgentlabConfig, jobId: string): Promise<ArtifactRecord[]> {
  const index = join(jobDir(config, jobId), 'artifacts', 'index.json');
  if (!existsSync(index)) return [];
  return Object.values(JSON.parse(await fs.readFile(index, 'utf8')) as Record<string, ArtifactRecord>);
}

export async function readArtifact(config: AgentlabConfig, jobId: string, name: string): Promise<Buffer> {
  const artifacts = await listArtifacts(config, jobId);
  if (!artifacts.some((a) => a.name === name)) throw notFound(`job ${jobId} has no artifact ${name}`);
  return fs.readFile(join(jobDir(config, jobId), 'artifacts', name));
}
