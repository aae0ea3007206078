// The fast workflow layer: the worker's two Workers in this process (the workflow bundle built from the sources
// once per run, the real activities of createActivities over an in-memory backend), on the shared dev server.
// No CLI, no worker process, no guest: a test plays the guest and the operator through the client itself.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Client,
  Connection,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import {
  DefaultLogger,
  makeTelemetryFilterString,
  NativeConnection,
  Runtime,
  Worker,
  type LogEntry,
} from '@temporalio/worker';
import { createActivities } from '../../activities';
import { announceCapacity, createAdmissionActivities } from '../../activities/admission';
import { dataConverter } from '../../common/codec';
import { parseConfig, type AgentlabConfig } from '../../common/config';
import {
  claimBootstrapUpdate,
  describeQuery,
  hostTaskQueue,
  reportResultSignal,
  type JobDescription,
  type JobRequest,
  type JobResult,
} from '../../common/contract';
import { jobStartOptions } from '../../common/job-start';
import { AgentlabMetrics } from '../../worker/metrics';
import type { jobWorkflow } from '../../workflows/job-workflow';
import { activityFailed } from './histories';
import { MemoryBackend } from './memory-backend';
import { eventually, temporalAddress, TEST_LOCAL_PROFILE } from './stack';
import { sourceWorkflowBundle } from './workflow-bundle';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface InProcessOptions {
  /** Profiles beside the default `local` one (backend local: the in-memory backend serves it). */
  profiles?: Record<string, unknown>[];
  continueAsNewAfterEvents?: number;
}

/**
 * The SDK's and the workflows' WARN and ERROR lines (a teardown's failed destroy, say), kept here rather than
 * printed: a test may assert on them. One Runtime per test file: Jest gives each file its own module registry.
 */
export const workerLogs: LogEntry[] = [];
let runtimeInstalled = false;

export class InProcessStack {
  readonly config: AgentlabConfig;
  readonly client: Client;
  /** The backend the activities drive: tests set its faults and read its VMs, calls and journal. */
  readonly backend: MemoryBackend;
  private readonly home: string;
  private readonly connection: NativeConnection;
  private readonly stop: () => void;
  private readonly running: Promise<unknown>;
  private readonly started = new Set<string>();

  private constructor(parts: {
    config: AgentlabConfig;
    client: Client;
    backend: MemoryBackend;
    home: string;
    connection: NativeConnection;
    workers: Worker[];
  }) {
    ({ config: this.config, client: this.client, backend: this.backend } = parts);
    ({ home: this.home, connection: this.connection } = parts);
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    this.stop = stop;
    // runUntil: a Worker that fails fails `close()` with its reason, instead of leaving the tests to time out.
    this.running = Promise.all(parts.workers.map((w) => w.runUntil(stopped)));
    this.running.catch(() => undefined); // surfaced by close()
  }

  static async start(options: InProcessOptions = {}): Promise<InProcessStack> {
    if (!runtimeInstalled) {
      Runtime.install({
        logger: new DefaultLogger('WARN', (entry) => workerLogs.push(entry)),
        // Core's own lines too (e.g. an activity completing after its workflow closed), instead of the console.
        telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
      });
      runtimeInstalled = true;
    }
    const home = mkdtempSync(join(tmpdir(), 'agentlab-fast-'));
    const id = randomBytes(4).toString('hex');
    const config = parseConfig(
      {
        node: `f${id}`,
        dataDir: join(home, 'data'),
        temporal: {
          address: temporalAddress(),
          taskQueue: `agentlab-fast-${id}`,
          ...(options.continueAsNewAfterEvents ? { continueAsNewAfterEvents: options.continueAsNewAfterEvents } : {}),
        },
        worker: { admission: { cores: 256, memoryMb: 512 * 1024, cpuOvercommit: 1 } },
        profiles: [TEST_LOCAL_PROFILE, ...(options.profiles ?? [])],
      },
      'in-process test stack',
      {},
    );
    const converter = dataConverter(undefined);
    const client = new Client({
      connection: await Connection.connect({ address: temporalAddress() }),
      dataConverter: converter,
    });
    const connection = await NativeConnection.connect({ address: temporalAddress() });
    const backend = new MemoryBackend();
    const workflowOpen = (workflowId: string) => isOpen(client, workflowId);
    const activities = createActivities({ config, backends: { local: backend }, workflowOpen });
    const { resolveProfile, ...hostActivities } = activities;
    const admissionDeps = { config, client, workflowOpen };
    const { requestAdmission, endedWorkflows } = createAdmissionActivities(admissionDeps);
    const common = { connection, namespace: config.temporal.namespace, dataConverter: converter };
    const workers = [
      await Worker.create({
        ...common,
        taskQueue: config.temporal.taskQueue,
        workflowBundle: await sourceWorkflowBundle(),
        activities: { resolveProfile, endedWorkflows },
        sinks: new AgentlabMetrics().sinks(),
      }),
      await Worker.create({
        ...common,
        taskQueue: hostTaskQueue(config.node),
        activities: { ...hostActivities, requestAdmission },
        // What is still running at close is the test's leftovers: no need to let it finish.
        shutdownGraceTime: '1s',
      }),
    ];
    await announceCapacity(admissionDeps);
    return new InProcessStack({ config, client, backend, home, connection, workers });
  }

  /** Starts a job's workflow as the CLI does (`job run`, `sandbox new`: no repo nor task). */
  async startJob(
    request: Partial<JobRequest> & { jobId: string },
  ): Promise<WorkflowHandleWithFirstExecutionRunId<typeof jobWorkflow>> {
    this.started.add(request.jobId);
    const full: JobRequest = { profile: 'local', ...request };
    return this.client.workflow.start('jobWorkflow', jobStartOptions(full, this.config.temporal.taskQueue));
  }

  handle(jobId: string): WorkflowHandle<typeof jobWorkflow> {
    return this.client.workflow.getHandle(jobId);
  }

  describe(jobId: string): Promise<JobDescription> {
    return this.handle(jobId).query(describeQuery);
  }

  /** In-process, every state is seconds away: a broken workflow fails in half a minute, not the e2e suites' one. */
  waitForState(jobId: string, predicate: (d: JobDescription) => boolean, what: string): Promise<JobDescription> {
    return eventually(
      `job ${jobId}: ${what}`,
      async () => {
        const d = await this.describe(jobId);
        return predicate(d) ? d : undefined;
      },
      30_000,
    );
  }

  /** What the guest runner does at boot: claims the bootstrap with the token its VM was given; the job RUNS. */
  async claimAsGuest(jobId: string): Promise<JobDescription> {
    const ready = await this.waitForState(jobId, (d) => d.state === 'READY', 'READY');
    await this.handle(jobId).executeUpdate(claimBootstrapUpdate, { args: [this.backend.claimFor(ready.vmid!)] });
    return this.waitForState(jobId, (d) => d.jobStatus === 'RUNNING', 'its job RUNNING');
  }

  /** What the guest runner sends when the agent exits. */
  reportResult(jobId: string, result: JobResult): Promise<void> {
    return this.handle(jobId).signal(reportResultSignal, result);
  }

  async history(jobId: string, runId?: string): Promise<HistoryEvent[]> {
    return (await this.client.workflow.getHandle(jobId, runId).fetchHistory()).events ?? [];
  }

  /** Waits for `activity` to fail for good in the job's history (see histories.ts), never a fixed time. */
  activityFailed(jobId: string, activity: string): Promise<true> {
    return activityFailed(this.client, jobId, activity);
  }

  /** The activities the server holds for the job now (scheduled, running or between retries). */
  async pendingActivities(jobId: string): Promise<string[]> {
    const { raw } = await this.handle(jobId).describe();
    return (raw.pendingActivities ?? []).map((a) => a.activityType?.name ?? '?');
  }

  /** Terminates what is still open, stops both Workers and removes the data directory. */
  async close(): Promise<void> {
    for (const jobId of this.started) {
      await this.handle(jobId)
        .terminate('test over')
        .catch((err: unknown) => {
          // Closed already: nothing to end.
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        });
    }
    this.stop();
    try {
      await this.running;
    } finally {
      await this.connection.close();
      await this.client.connection.close();
      rmSync(this.home, { recursive: true, force: true });
    }
  }
}

async function isOpen(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** An Update's refusal as the CLI prints it (undefined if it was accepted). */
export function updateRefusal(update: Promise<unknown>): Promise<string | undefined> {
  return update.then(
    () => undefined,
    (err: unknown) => {
      if (!(err instanceof WorkflowUpdateFailedError)) throw err;
      return err.cause?.message;
    },
  );
}
