// A job's folder on the worker's host, `<dataDir>/jobs/<jobId>/`: the one place that knows its layout. The worker
// writes it (worker/job-files.ts, for the guest API), the CLI on the worker's host and the operator API read it
// (common/job-files.ts), the activities read the guest's heartbeat from it.
import { join } from 'node:path';
import { jobIdSchema } from './schemas';

/** Under the data dir, the folder of every job's folder. */
const JOBS_DIR = 'jobs';
const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** The worker's own list of a job's artifacts, beside them: never an artifact itself. */
export const ARTIFACT_INDEX = 'index.json';

/** The artifacts the guest runner uploads and the CLI reads by name (guest/delivery.ts). */
export const JOB_ARTIFACTS = {
  /** Everything the agent changed, redacted. */
  patch: 'changes.patch',
  /** The runner's report: base commit, usage, redactions. */
  report: 'report.json',
} as const;

export class InvalidJobIdError extends Error {
  override name = 'InvalidJobIdError';
}

/** The job's folder and what is in it. The ID is validated: never a path. */
export function jobFolder(dataDir: string, jobId: string) {
  if (!jobIdSchema.safeParse(jobId).success) throw new InvalidJobIdError(`job id "${jobId}" is not valid`);
  const dir = join(dataDir, JOBS_DIR, jobId);
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

/** The folder as the operator is told about it: the data dir as configured, not normalised. */
export const jobFolderText = (dataDir: string, jobId: string): string => `${dataDir}/${JOBS_DIR}/${jobId}/`;

/** Where the worker keeps a job's last guest heartbeat (its mtime is when the runner was last heard). */
export const guestHeartbeatPath = (dataDir: string, jobId: string): string => jobFolder(dataDir, jobId).heartbeat;

/** What a guest may call an artifact: a plain file name, never a path, never the index. */
export function isArtifactName(name: string): boolean {
  return ARTIFACT_NAME.test(name) && !name.includes('..') && name !== ARTIFACT_INDEX;
}
