// A sandbox's `--json` document (cli/json-schemas.ts): the sandbox part of a job's, with its job and timeline.
import type { JobDescription } from '../../../common/contract';
import { jobDocument } from '../job/document';

export function sandboxDocument(d: JobDescription) {
  const doc = jobDocument(d);
  return { ...doc.sandbox, jobId: d.jobId, jobStatus: d.jobStatus, timeline: doc.timeline };
}
