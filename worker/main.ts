#!/usr/bin/env node
// agentlab-worker: runs jobWorkflow, the host's backend activities and the guest API, in one process.
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { createActivities } from '../activities';
import { announceCapacity, createAdmissionActivities } from '../activities/admission';
import { codecFor, dataConverter } from '../common/codec';
import { secretsPaths } from '../common/secrets';
import { CodecServer } from './codec-server';
import { OperatorApi } from './operator-api';
import { loadOperatorToken } from '../common/operator-api';
import { DnsForwarder, hostNameservers } from './dns-forwarder';
import { ensureReconcileSchedule } from './reconcile-schedule';
import { createBackends } from '../backends';
import { loadConfig } from '../common/config';
import { hostTaskQueue } from '../common/contract';
import { connectClient, TemporalUnavailableError } from '../common/temporal';
import { GuestApi } from './guest-api';
import { JobFiles } from './job-files';
import { createLogger } from './logger';
import { connectNative } from './temporal-connection';
import { AgentlabMetrics, serveMetrics } from './metrics';
import { workflowSource } from './workflow-bundle';

const { WorkflowExecutionStatus } = temporal.api.enums.v1;
const GRPC_NOT_FOUND = 5; // grpc status code; @grpc/grpc-js is only a transitive dependency

/**
 * Every running sandbox holds one activity slot for its whole run (awaitGuestSilence, the guest's
 * watchdog), and a sandbox needs at least one core, so the host admits at most `cores` of them: that many
 * slots, plus room for the provisioning and teardown of the others. With the SDK's fixed 100, more than
 * ~100 running sandboxes left provisioning and teardown waiting for a slot (200 jobs at once: 49 s p50).
 */
const PROVISIONING_SLOTS = 100;
function hostActivitySlots(capacity: { cores: number }): number {
  return capacity.cores + PROVISIONING_SLOTS;
}

async function run(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('agentlab-worker');
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) =>
      logger[entry.level.toLowerCase() as Lowercase<LogLevel>]?.(entry.meta ?? {}, entry.message),
    ),
    telemetryOptions: {
      metrics: { prometheus: { bindAddress: config.worker.sdkMetricsListen, countersTotalSuffix: true } },
    },
  });
  const metrics = new AgentlabMetrics();

  const { backends, nameserver, qemu } = await createBackends(config);
  if (qemu)
    logger.info({ image: qemu.image.dir, accelerator: qemu.accelerator, reason: qemu.reason }, 'qemu backend ready');
  let dnsForwarder: DnsForwarder | undefined;
  const { local } = config;
  if (nameserver && local.dnsUpstreams) {
    const upstreams = local.dnsUpstreams.length > 0 ? local.dnsUpstreams : hostNameservers();
    if (upstreams.length === 0) {
      logger.warn('no IPv4 nameserver in /etc/resolv.conf: sandboxes get no DNS (set local.dns.upstreams)');
    } else {
      dnsForwarder = new DnsForwarder({ listenHost: local.gateway, subnet: local.subnet, upstreams }, logger);
      await dnsForwarder.listen();
      logger.info({ listen: `${local.gateway}:53`, upstreams }, 'DNS forwarder for sandboxes');
    }
  }
  const codec = codecFor(config); // read once: the client, the workers and the codec endpoint share it
  // Read before anything starts: a bad token file stops the worker with the fix, not a later 401.
  const operatorApi =
    config.operatorApi?.listen !== undefined
      ? new OperatorApi(config.dataDir, loadOperatorToken(config.operatorApi.tokenFile), logger)
      : undefined;
  const client = await connectClient(config, codec);
  const activities = createActivities({ config, backends, workflowOpen: (id) => workflowOpen(client, id) });
  const { resolveProfile, ...hostActivities } = activities;
  const admissionDeps = { config, client, workflowOpen: (id: string) => workflowOpen(client, id) };
  const { requestAdmission, endedWorkflows } = createAdmissionActivities(admissionDeps);

  const connection = await connectNative(config);
  const common = {
    connection,
    namespace: config.temporal.namespace,
    shutdownGraceTime: config.worker.shutdownGraceTimeMs,
    dataConverter: dataConverter(codec),
  };
  const workflowWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.taskQueue,
    ...workflowSource(),
    activities: { resolveProfile, endedWorkflows },
    sinks: metrics.sinks(),
  });
  const hostWorker = await Worker.create({
    ...common,
    taskQueue: hostTaskQueue(config.node),
    activities: { ...hostActivities, requestAdmission },
    maxConcurrentActivityTaskExecutions: hostActivitySlots(config.worker.admission.capacity),
  });

  const guestApi = new GuestApi({
    client,
    files: new JobFiles(config.dataDir),
    logger,
    secrets: secretsPaths(),
    maxArtifactBytes: config.guestApi.maxArtifactBytes,
    bootstrapRateLimit: config.guestApi.bootstrapRateLimit,
  });
  await guestApi.listen(config.guestApi.host, config.guestApi.port);
  const codecServer = codec && new CodecServer(codec, new URL(config.temporal.uiUrl).origin, logger);
  if (codecServer) {
    const [codecHost, codecPort] = config.temporal.codec!.endpointListen.split(':') as [string, string];
    await codecServer.listen(codecHost, Number(codecPort));
  }
  if (operatorApi) {
    const [operatorHost, operatorPort] = config.operatorApi!.listen!.split(':') as [string, string];
    await operatorApi.listen(operatorHost, Number(operatorPort));
  }
  const [metricsHost, metricsPort] = config.worker.metricsListen.split(':') as [string, string];
  const metricsServer = await serveMetrics(
    metrics,
    metricsHost,
    Number(metricsPort),
    `http://${config.worker.sdkMetricsListen}/metrics`,
  );

  await ensureReconcileSchedule(client, config, logger);
  await announceCapacity(admissionDeps);

  logger.info(
    {
      node: config.node,
      temporal: config.temporal.address,
      guestApi: config.guestApi.url,
      metrics: `http://${config.worker.metricsListen}/metrics`,
      payloadEncryption: codec ? `on (key ${codec.keyId})` : 'off',
      admissionCapacity: config.worker.admission.capacity,
      config: config.source,
    },
    'worker started',
  );
  try {
    // Runtime.install's default shutdown signals (SIGINT, SIGTERM) drain both workers gracefully.
    await Promise.all([workflowWorker.run(), hostWorker.run()]);
  } finally {
    await guestApi.close();
    await codecServer?.close();
    await operatorApi?.close();
    await dnsForwarder?.close();
    metricsServer.close();
    await client.connection.close();
    await connection.close();
    logger.info('worker stopped');
  }
}

/**
 * Open = its latest run is still running; a workflow Temporal no longer knows is closed. Reads the raw
 * status so a workflow whose memo was sealed with an earlier codec key is still judged (describe() would throw).
 */
async function workflowOpen(client: Client, workflowId: string): Promise<boolean> {
  try {
    const described = await client.workflowService.describeWorkflowExecution({
      namespace: client.options.namespace,
      execution: { workflowId },
    });
    return described.workflowExecutionInfo?.status === WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING;
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND) return false;
    throw err;
  }
}

run().catch((err) => {
  // Temporal out of reach, or its TLS handshake failing: the message is the reason, and the exit code the CLI's (5).
  if (err instanceof TemporalUnavailableError) {
    console.error(`${err.name}: ${err.message}`);
    process.exit(5);
  }
  console.error(err);
  process.exit(1);
});
