// Follows a job's workflow: prints each state transition as the workflow records it, until it settles.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { describeQuery, type JobDescription } from '../common/contract';
import { formatDuration } from '../common/duration';
import { isTerminalJobStatus } from '../common/states';
import type { CliIo } from './io';
import { progress } from './output';
import { placesInLine } from './admission-line';

const POLL_MS = 400;

export type SettledWhen = (description: JobDescription, closed: boolean) => boolean;

/** A job has settled when its workflow closed, or (keepalive) when its job status is final. */
export const jobSettled: SettledWhen = (d, closed) =>
  // Without keepalive the sandbox is still RUNNING while teardown destroys it: wait for the close.
  closed || (d.keepalive && isTerminalJobStatus(d.jobStatus) && d.state === 'RUNNING');
/** A bare sandbox has settled once it is usable, or once it ended. */
export const sandboxSettled: SettledWhen = (d, closed) => closed || d.state === 'RUNNING' || d.state === 'FAILED';

export async function followJob(
  client: Client,
  jobId: string,
  settled: SettledWhen,
  options: { io: CliIo; quiet: boolean; streamLog?: (offset: number) => Promise<Buffer> },
): Promise<JobDescription> {
  const handle: WorkflowHandle = client.workflow.getHandle(jobId);
  let printed = 0;
  let logOffset = 0;
  let warnedNoWorker = false;
  let shownPlace: number | undefined;
  /**
   * While the job waits for its host's capacity, says so whenever its place in line changes (a query of the
   * admission workflow per poll, only while the job waits).
   */
  const showPlace = async (d: JobDescription) => {
    if (options.quiet) return;
    const place = (await placesInLine(client, [d])).get(jobId);
    if (place !== undefined && place !== shownPlace)
      progress(options.io, `waiting for capacity on ${d.node}: place ${place} in line`);
    shownPlace = place;
  };
  /** The agent's output, as it arrives, on stdout (the data); transitions stay on stderr. */
  const streamLog = async () => {
    if (!options.streamLog) return;
    // Until it is drained: a remote reader hands out the log in bounded chunks.
    for (let chunk = await options.streamLog(logOffset); chunk.length > 0; chunk = await options.streamLog(logOffset)) {
      options.io.out(chunk);
      logOffset += chunk.length;
    }
  };
  // Ctrl-C detaches: the job is a workflow and goes on without us.
  const detach = () => {
    progress(
      options.io,
      `\ndetached; job ${jobId} continues. Re-attach: agentlab job logs --follow ${jobId}; agentlab job show ${jobId}`,
    );
    process.exit(130);
  };
  process.once('SIGINT', detach);
  try {
    return await poll();
  } finally {
    process.removeListener('SIGINT', detach);
  }

  async function poll(): Promise<JobDescription> {
    for (;;) {
      const execution = await handle.describe();
      const closed = execution.status.name !== 'RUNNING';
      let description: JobDescription | undefined;
      try {
        description = await handle.query(describeQuery);
      } catch (err) {
        if (closed) throw err;
        if (!warnedNoWorker && !options.quiet)
          progress(options.io, `waiting for a worker to answer (${(err as Error).message})`);
        warnedNoWorker = true;
      }
      if (description) {
        for (; printed < description.timeline.length; printed++) {
          const entry = description.timeline[printed]!;
          // A refused Signal's entry is no transition: it neither took time nor ends the state before it.
          const previous = description.timeline
            .slice(0, printed)
            .filter((t) => !t.signal)
            .at(-1);
          const took =
            previous && !entry.signal ? ` (${previous.state} took ${formatDuration(entry.at - previous.at)})` : '';
          const where =
            entry.state === 'READY' && description.vmid !== undefined
              ? ` vmid=${description.vmid}${description.address ? ` address=${description.address}` : ''}`
              : '';
          if (!options.quiet)
            progress(
              options.io,
              `${new Date(entry.at).toISOString()}  ${entry.state}${where}${took}${entry.note ? `  ${entry.note}` : ''}`,
            );
        }
        await showPlace(description);
        await streamLog();
        if (settled(description, closed)) {
          await streamLog(); // the runner ships its whole log before reporting: nothing comes after this
          return description;
        }
      }
      await sleep(POLL_MS);
    }
  }
}
