// A waiting job's place in its host's line, read from that host's admission workflow (one query per node).
import type { Client } from '@temporalio/client';
import { admissionLineQuery, admissionWorkflowId, placeInLine, type AdmissionView } from '../common/admission';
import type { JobStatus, SandboxState } from '../common/states';

export interface JobInLine {
  jobId: string;
  node?: string;
  state?: SandboxState;
  jobStatus?: JobStatus;
}

/** Queued and no VM yet: the job is (or is about to be) in its node's line. */
const mayBeWaiting = (job: JobInLine): job is JobInLine & { node: string } =>
  job.jobStatus === 'QUEUED' && job.state === 'REQUESTED' && job.node !== undefined;

/** A query needs a worker: listing must not hang on a host whose worker is down. */
const QUERY_DEADLINE_MS = 3000;

/** A node whose admission workflow does not answer (no worker now, an older deployment) has no line to show. */
async function lineOf(client: Client, node: string): Promise<AdmissionView | undefined> {
  return client
    .withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
      client.workflow.getHandle(admissionWorkflowId(node)).query(admissionLineQuery),
    )
    .catch(() => undefined);
}

/** Places in line (1 = next) of the waiting jobs among these, by job id. */
export async function placesInLine(client: Client, jobs: JobInLine[]): Promise<Map<string, number>> {
  const waiting = jobs.filter(mayBeWaiting);
  const nodes = [...new Set(waiting.map((job) => job.node))];
  const lines = new Map(await Promise.all(nodes.map(async (node) => [node, await lineOf(client, node)] as const)));
  const places = new Map<string, number>();
  for (const job of waiting) {
    const line = lines.get(job.node);
    const place = line && placeInLine(line, job.jobId);
    if (place !== undefined) places.set(job.jobId, place);
  }
  return places;
}
