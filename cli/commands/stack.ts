// `agentlab up | down | status`: the embedded stack (Temporal dev server + one worker) on this machine.
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { AgentlabConfig } from '../../common/config';
import { packageRoot } from '../../common/paths';
import { SANDBOX_STATES } from '../../common/states';
import { connectClient } from '../../common/temporal';
import { codecEndpointUrl } from '../../common/codec';
import { devServerArgs, temporalCliPath } from '../../common/temporal-server';

import { CliError, ExitCode, toCliError } from '../errors';
import type { ListedJob } from '../jobs';
import { formatTime, printFields, printJson, progress } from '../output';
import { runAction } from '../run-action';
import { readPid, spawnDetached, stopProcess, waitUntilUp, type StartedProcess } from '../stack-process';

const portOf = (hostPort: string) => Number(hostPort.split(':').at(-1));

/** A refused connection answers at once, where the gRPC client retries for its whole connect timeout (3 s). */
function acceptsConnections(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), portOf(address)];
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    const answer = (accepted: boolean) => {
      socket.destroy();
      resolve(accepted);
    };
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
    socket.once('timeout', () => answer(false));
  });
}

async function temporalReachable(config: AgentlabConfig): Promise<boolean> {
  if (!(await acceptsConnections(config.temporal.address))) return false;
  try {
    const client = await connectClient(config);
    await client.connection.close();
    return true;
  } catch {
    return false;
  }
}

async function guestApiHealthy(config: AgentlabConfig): Promise<boolean> {
  try {
    return (await fetch(`${config.guestApi.url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

/** Each port the stack listens on, with the setting that chooses it: what an "in use" error tells to change. */
function portSettings(config: AgentlabConfig, uiPort: number): Map<number, string> {
  return new Map([
    [portOf(config.temporal.address), 'temporal.address'],
    [uiPort, 'temporal.uiUrl'],
    [config.guestApi.port, 'guestApi.listen'],
    [portOf(config.worker.metricsListen), 'worker.metricsListen'],
    [portOf(config.worker.sdkMetricsListen), 'worker.sdkMetricsListen'],
  ]);
}

const stopTimeoutMs = (config: AgentlabConfig, name: string) =>
  name === 'worker' ? config.worker.shutdownGraceTimeMs + 5000 : 15_000;

/** `up` failed: stop what this call started (never a stack that was already running), and say so. */
async function stopStarted(config: AgentlabConfig, started: StartedProcess[], err: unknown): Promise<CliError> {
  const error = toCliError(err, config.temporal.address);
  const stopped: { process: string; pid: number }[] = [];
  for (const proc of [...started].reverse()) {
    if (await stopProcess(config, proc.name, stopTimeoutMs(config, proc.name)))
      stopped.push({ process: proc.name, pid: proc.pid });
  }
  if (stopped.length === 0) return error;
  const names = stopped.map((s) => (s.process === 'temporal' ? 'the Temporal dev server' : `the ${s.process}`));
  return new CliError(
    `${error.message}. Stopped ${names.join(' and ')} this \`agentlab up\` had started`,
    error.exitCode,
    error.code,
    { ...(error.details as object | undefined), stopped },
  );
}

export function registerStackCommands(program: Command): void {
  program
    .command('up')
    .description('start the embedded stack: Temporal dev server (SQLite, Web UI) and a worker')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const { config } = ctx;
        const uiPort = Number(new URL(config.temporal.uiUrl).port || 8233);
        const ports = portSettings(config, uiPort);
        const started: StartedProcess[] = [];
        let temporal = 'already running';
        let worker = 'already running';
        try {
          if (config.temporal.tls || config.temporal.apiKeyFile) {
            // A TLS Temporal is the operator's (a cluster, Temporal Cloud): never start a plain dev server in its
            // place; a failing handshake stops here with its reason (exit 5), before any worker starts.
            await (await connectClient(config)).connection.close();
            temporal = 'external, TLS';
          } else if (!(await temporalReachable(config))) {
            mkdirSync(config.dataDir, { recursive: true });
            const args = devServerArgs({
              ip: config.temporal.address.split(':')[0]!,
              port: portOf(config.temporal.address),
              uiPort,
              namespace: config.temporal.namespace,
              dbFilename: join(config.dataDir, 'temporal.sqlite'),
              uiCodecEndpoint: codecEndpointUrl(config),
            });
            const server = await spawnDetached(config, 'temporal', temporalCliPath(), args);
            started.push(server);
            if (!ctx.json)
              progress(ctx.io, `starting Temporal dev server on ${config.temporal.address} (log: ${server.logFile})`);
            await waitUntilUp(server, 'the Temporal dev server', () => temporalReachable(config), 60_000, ports);
            temporal = 'started';
          }
          if (!(await guestApiHealthy(config))) {
            const workerProcess = await spawnDetached(config, 'worker', process.execPath, [
              join(packageRoot(), 'dist', 'worker', 'main.js'),
            ]);
            started.push(workerProcess);
            if (!ctx.json) progress(ctx.io, `starting worker (log: ${workerProcess.logFile})`);
            await waitUntilUp(workerProcess, 'the worker', () => guestApiHealthy(config), 60_000, ports);
            worker = 'started';
          }
        } catch (err) {
          throw await stopStarted(config, started, err);
        }
        const summary = {
          temporal: { address: config.temporal.address, namespace: config.temporal.namespace, status: temporal },
          webUi: config.temporal.uiUrl,
          worker: { node: config.node, guestApi: config.guestApi.url, status: worker },
          dataDir: config.dataDir,
        };
        if (ctx.json) printJson(ctx.io, summary);
        else
          printFields(ctx.io, [
            ['Temporal', `${config.temporal.address} (${temporal})`],
            ['Web UI', config.temporal.uiUrl],
            ['Worker', `node ${config.node}, guest API ${config.guestApi.url} (${worker})`],
            ['Data', config.dataDir],
          ]);
        return ExitCode.ok;
      }),
    );

  program
    .command('down')
    .description('stop the embedded stack started by `agentlab up` (sandboxes and jobs persist)')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const worker = await stopProcess(ctx.config, 'worker', stopTimeoutMs(ctx.config, 'worker'));
        const temporal = await stopProcess(ctx.config, 'temporal', stopTimeoutMs(ctx.config, 'temporal'));
        if (ctx.json)
          printJson(ctx.io, {
            worker: worker ? 'stopped' : 'not running',
            temporal: temporal ? 'stopped' : 'not running',
          });
        else
          progress(
            ctx.io,
            `worker ${worker ? 'stopped' : 'was not running'}; Temporal ${temporal ? 'stopped' : 'was not started by agentlab up'}`,
          );
        return ExitCode.ok;
      }),
    );

  program
    .command('status')
    .description('show the stack and sandbox counts by state')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const { config } = ctx;
        const reachable = await temporalReachable(config);
        const workerUp = await guestApiHealthy(config);
        const counts: Record<string, number> = {};
        let recentFailures: ListedJob[] = [];
        if (reachable) {
          const client = await ctx.client();
          for (const state of SANDBOX_STATES) {
            const { count } = await client.workflow.count(
              `WorkflowType = "jobWorkflow" AND AgentlabState = "${state}"`,
            );
            counts[state] = count;
          }
          recentFailures = await ctx.jobs.list('AgentlabJobStatus = "FAILED"', 5);
        }
        const document = {
          temporal: { address: config.temporal.address, reachable, pid: readPid(config, 'temporal') ?? null },
          worker: { guestApi: config.guestApi.url, healthy: workerUp, pid: readPid(config, 'worker') ?? null },
          webUi: config.temporal.uiUrl,
          sandboxes: counts,
          recentFailures: recentFailures.map((j) => ({
            jobId: j.jobId,
            state: j.state,
            startedAt: formatTime(j.startedAt),
          })),
        };
        if (ctx.json) printJson(ctx.io, document);
        else {
          printFields(ctx.io, [
            ['Temporal', `${config.temporal.address} ${reachable ? 'reachable' : 'UNREACHABLE'}`],
            ['Worker', `${config.guestApi.url} ${workerUp ? 'healthy' : 'DOWN'}`],
            ['Web UI', config.temporal.uiUrl],
            ...Object.entries(counts).map(([state, count]): [string, number] => [state, count]),
            ['Recent failures', recentFailures.map((j) => j.jobId).join(', ') || 'none'],
          ]);
        }
        if (!reachable) return ExitCode.unavailable;
        return ExitCode.ok;
      }),
    );
}
