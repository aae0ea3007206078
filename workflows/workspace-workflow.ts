// workspaceWorkflow: one per persistent workspace. Creates its storage on its node, lends it to one sandbox at
// a time (the others wait in line, or are refused with `--no-wait`), keeps the history, and deletes the storage
// on `workspace destroy`. Its state is durable: a worker crash loses neither the workspace nor its holder.
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AdmissionActivities } from '../activities/admission';
import { hostTaskQueue, PERMANENT_ERROR_TYPES, SearchAttributes } from '../common/contract';
import {
  describeWorkspaceQuery,
  destroyWorkspaceUpdate,
  heldByText,
  releaseWorkspaceSignal,
  requestWorkspaceSignal,
  workspaceAttachedSignal,
  workspaceGrantedSignal,
  workspaceRefusedSignal,
  type WorkspaceDescription,
  type WorkspaceInput,
  type WorkspaceRef,
} from '../common/workspace';
import { describeIssues } from '../common/schemas';
import { withSummaries } from './activity-summaries';
import { z } from 'zod';
import { WorkspaceBook } from './workspace-book';

const controlPlane = proxyActivities<AdmissionActivities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3 },
});

const destroyInputSchema = z.object({ reason: z.string().max(1000).optional() }).strict();

export async function workspaceWorkflow(input: WorkspaceInput): Promise<WorkspaceDescription> {
  const book = new WorkspaceBook(input.name, input.carried);
  const ref: WorkspaceRef = {
    name: input.name,
    backend: input.backend,
    node: input.node,
    sizeGb: input.sizeGb,
    workflowId: workflowInfo().workflowId,
  };
  const host = withSummaries(
    proxyActivities<Activities>({
      taskQueue: hostTaskQueue(input.node),
      startToCloseTimeout: '10m',
      heartbeatTimeout: '30s',
      retry: { maximumInterval: '30s', nonRetryableErrorTypes: PERMANENT_ERROR_TYPES },
    }),
  );
  let error: string | undefined;
  let destroyRequested = false;
  /** Signals owed to jobs: grants and refusals, sent by the main loop (handlers cannot await). */
  const outbox: { to: string; refusal?: string }[] = [];

  const describe = (): WorkspaceDescription => ({
    name: input.name,
    backend: input.backend,
    profile: input.profile,
    node: input.node,
    sizeGb: input.sizeGb,
    createdAt: input.createdAt,
    ...book.carried(),
    ...(error ? { error } : {}),
  });
  setHandler(describeWorkspaceQuery, describe);

  setHandler(requestWorkspaceSignal, ({ holder, jobId, wait }) => {
    if (destroyRequested || !['CREATING', 'AVAILABLE', 'ATTACHED'].includes(book.status)) {
      outbox.push({
        to: holder,
        refusal: `workspace ${input.name} is ${destroyRequested ? 'DESTROYING' : book.status}`,
      });
      return;
    }
    const outcome = book.request({ workflowId: holder, jobId, since: Date.now() }, wait);
    if ('granted' in outcome)
      outbox.push({ to: holder }); // asked again: its grant may have been lost
    else if ('refused' in outcome) outbox.push({ to: holder, refusal: outcome.refused });
    show();
  });
  setHandler(workspaceAttachedSignal, ({ holder, vmid }) => {
    book.attached(holder, vmid);
    show();
  });
  setHandler(releaseWorkspaceSignal, ({ holder }) => {
    if (book.release(holder, Date.now())) show();
  });

  setHandler(
    destroyWorkspaceUpdate,
    async ({ reason }) => {
      destroyRequested = true;
      log.info('workspace destroy requested', { reason });
      await condition(() => book.status === 'DESTROYED' || book.status === 'FAILED');
      if (book.status === 'FAILED') throw ApplicationFailure.nonRetryable(`destroying failed: ${error}`);
      return { status: book.status };
    },
    {
      validator: (args) => {
        const parsed = destroyInputSchema.safeParse(args ?? {});
        if (!parsed.success) throw new Error(describeIssues(parsed.error));
        if (destroyRequested || book.status === 'DESTROYING') throw new Error(`workspace ${input.name} is DESTROYING`);
        if (book.holder) {
          throw new Error(`${heldByText(input.name, book.holder)}: destroy that sandbox first`);
        }
        if (book.waiting.length > 0) {
          throw new Error(`workspace ${input.name} is awaited by job ${book.waiting[0]!.jobId}: cancel it first`);
        }
      },
    },
  );

  /** What the Web UI shows on this workflow's page, and the search attributes `workspace list` reads. */
  function show(): void {
    const d = describe();
    const attachments = d.attachments
      .slice(-10)
      .map(
        (a) =>
          `- job ${a.jobId}${a.vmid !== undefined ? ` (vmid ${a.vmid})` : ''}: ${new Date(a.grantedAt).toISOString()}` +
          ` → ${a.releasedAt ? new Date(a.releasedAt).toISOString() : 'now'}${a.note ? ` (${a.note})` : ''}`,
      );
    setCurrentDetails(
      [
        `**Workspace ${d.name}**: ${d.status}, ${d.sizeGb} GiB on node ${d.node} (${d.backend}, profile ${d.profile})`,
        `**Holder**: ${d.holder ? `job ${d.holder.jobId}` : 'none'}`,
        `**Waiting** (${d.waiting.length}): ${d.waiting.map((w) => w.jobId).join(', ') || 'nobody'}`,
        `**Attachments** (${d.attachments.length}, latest last):`,
        ...attachments,
        ...(d.error ? [`**Error**: ${d.error}`] : []),
      ].join('\n'),
    );
    upsertSearchAttributes([{ key: SearchAttributes.state, value: d.status }]);
  }

  /** A job that is gone cannot attach, nor release: the workspace goes back at once. */
  async function send(message: { to: string; refusal?: string }): Promise<void> {
    try {
      const job = getExternalWorkflowHandle(message.to);
      if (message.refusal !== undefined)
        await job.signal(workspaceRefusedSignal, { name: input.name, reason: message.refusal });
      else await job.signal(workspaceGrantedSignal, ref);
    } catch (err) {
      log.warn('the job asking for the workspace is gone', { job: message.to, reason: (err as Error).message });
      book.release(message.to, Date.now(), 'its job ended before it attached');
    }
  }

  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= input.continueAsNewAfterEvents;
  };

  show();
  if (book.status === 'CREATING') {
    try {
      await host.createWorkspace({ workspace: ref });
      book.status = book.holder ? 'ATTACHED' : 'AVAILABLE';
    } catch (err) {
      error = innermost(err);
      book.status = 'FAILED';
      for (const w of book.drainWaiting())
        outbox.push({ to: w.workflowId, refusal: `workspace ${input.name} failed: ${error}` });
      await Promise.all(outbox.splice(0).map(send));
      show();
      throw ApplicationFailure.nonRetryable(`creating workspace ${input.name} failed: ${error}`, 'WorkspaceFailed');
    }
  }

  void reclaimEndedHolder(book, input.reclaimIntervalMs, show);
  for (;;) {
    const admitted = book.admit(Date.now());
    if (admitted) outbox.push({ to: admitted.workflowId });
    show();
    const batch = outbox.splice(0);
    await Promise.all(batch.map(send));
    if (batch.length > 0) continue; // a failed grant may have freed the workspace
    if (destroyRequested && !book.holder) break;
    // Not while a destroy waits: its Update handler is only done once the storage is gone.
    if (historyFull() && !destroyRequested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof workspaceWorkflow>({ ...input, carried: book.carried() });
    }
    await condition(
      () =>
        outbox.length > 0 ||
        (!book.holder && book.waiting.length > 0) ||
        (destroyRequested && !book.holder) ||
        (historyFull() && !destroyRequested),
    );
  }

  book.status = 'DESTROYING';
  for (const w of book.drainWaiting())
    outbox.push({ to: w.workflowId, refusal: `workspace ${input.name} is DESTROYING` });
  show();
  await Promise.all(outbox.splice(0).map(send));
  try {
    await host.deleteWorkspace({ workspace: ref });
  } catch (err) {
    error = innermost(err);
    book.status = 'FAILED';
    show();
    await condition(allHandlersFinished);
    throw ApplicationFailure.nonRetryable(`deleting workspace ${input.name} failed: ${error}`, 'WorkspaceFailed');
  }
  book.status = 'DESTROYED';
  show();
  await condition(allHandlersFinished);
  return describe();
}

/**
 * A job releases the workspace in its own teardown; only a workflow that ended without it (terminated, reset)
 * keeps it. While others wait, the holder's workflow is checked every interval; nobody waiting, no timers.
 */
async function reclaimEndedHolder(book: WorkspaceBook, intervalMs: number, show: () => void): Promise<void> {
  for (;;) {
    await condition(() => book.waiting.length > 0 && book.holder !== undefined);
    await sleep(intervalMs);
    const holder = book.holder;
    if (!holder || book.waiting.length === 0) continue;
    try {
      const ended = await controlPlane.endedWorkflows({ workflowIds: [holder.workflowId] });
      if (
        ended.includes(holder.workflowId) &&
        book.release(holder.workflowId, Date.now(), 'its job ended without releasing it')
      ) {
        log.warn('reclaimed a workspace whose job ended without releasing it', { holder: holder.workflowId });
        show();
      }
    } catch (err) {
      log.warn('could not check the workspace holder; trying again next interval', { reason: (err as Error).message });
    }
  }
}

/** The innermost message: "Activity task failed" says nothing to an operator. */
function innermost(err: unknown): string {
  let current: unknown = err;
  while (current instanceof Error && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
