// `agentlab up | down | status`: the embedded stack (Temporal dev server + one worker) on this machine.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { AgentlabConfig } from '../../common/config';
import { packageRoot } from '../../common/paths';
import { SANDBOX_STATES } from '../../common/states';
import { connectClient } from '../../common/temporal';
import { codecEndpointUrl } from '../../common/codec';
import { devServerArgs, temporalCliPath } from '../../common/temporal-server';

import { CliError, ExitCode } from '../errors';
import { listJobs, type ListedJob } from '../context';
import { formatTime, printFields, printJson, progress } from '../output';
import { runAction } from '../run-action';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const stackDir = (config: AgentlabConfig) => join(config.dataDir, 'stack');
const pidFile = (config: AgentlabConfig, name: string) => join(stackDir(config), `${name}.pid`);

function readPid(config: AgentlabConfig, name: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(config, name), 'utf8'));
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function temporalReachable(config: AgentlabConfig): Promise<boolean> {
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

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(250);
  }
  throw new CliError(
    `${what} did not come up within ${timeoutMs / 1000}s; see ${logFile}`,
    ExitCode.unavailable,
    'unavailable',
  );
}

function spawnDetached(config: AgentlabConfig, name: string, command: string, args: string[]): string {
  mkdirSync(stackDir(config), { recursive: true });
  const logFile = join(stackDir(config), `${name}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env: process.env });
  closeSync(log);
  child.unref();
  writeFileSync(pidFile(config, name), String(child.pid));
  return logFile;
}

async function stopProcess(config: AgentlabConfig, name: string, timeoutMs: number): Promise<boolean> {
  const pid = readPid(config, name);
  rmSync(pidFile(config, name), { force: true });
  if (!pid) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(100);
  }
  process.kill(pid, 'SIGKILL');
  return true;
}

export function registerStackCommands(program: Command): void {
  program
    .command('up')
    .description('start the embedded stack: Temporal dev server (SQLite, Web UI) and a worker')
    .option('--json', 'print one JSON document')
    .action(
      runAction(async (ctx) => {
        const { config } = ctx;
        let temporal = 'already running';
        if (!(await temporalReachable(config))) {
          const [ip, port] = config.temporal.address.split(':') as [string, string];
          const uiPort = Number(new URL(config.temporal.uiUrl).port || 8233);
          mkdirSync(config.dataDir, { recursive: true });
          const args = devServerArgs({
            ip,
            port: Number(port),
            uiPort,
            namespace: config.temporal.namespace,
            dbFilename: join(config.dataDir, 'temporal.sqlite'),
            uiCodecEndpoint: codecEndpointUrl(config),
          });
          const log = spawnDetached(config, 'temporal', temporalCliPath(), args);
          if (!ctx.json) progress(`starting Temporal dev server on ${config.temporal.address} (log: ${log})`);
          await waitFor('Temporal', () => temporalReachable(config), 60_000, log);
          temporal = 'started';
        }
        let worker = 'already running';
        if (!(await guestApiHealthy(config))) {
          const log = spawnDetached(config, 'worker', process.execPath, [
            join(packageRoot(), 'dist', 'worker', 'main.js'),
          ]);
          if (!ctx.json) progress(`starting worker (log: ${log})`);
          await waitFor('the worker', () => guestApiHealthy(config), 60_000, log);
          worker = 'started';
        }
        const summary = {
          temporal: { address: config.temporal.address, namespace: config.temporal.namespace, status: temporal },
          webUi: config.temporal.uiUrl,
          worker: { node: config.node, guestApi: config.guestApi.url, status: worker },
          dataDir: config.dataDir,
        };
        if (ctx.json) printJson(summary);
        else
          printFields([
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
        const worker = await stopProcess(ctx.config, 'worker', ctx.config.worker.shutdownGraceTimeMs + 5000);
        const temporal = await stopProcess(ctx.config, 'temporal', 15_000);
        if (ctx.json)
          printJson({ worker: worker ? 'stopped' : 'not running', temporal: temporal ? 'stopped' : 'not running' });
        else
          progress(
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
          recentFailures = await listJobs(client, 'AgentlabJobStatus = "FAILED"', 5);
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
        if (ctx.json) printJson(document);
        else {
          printFields([
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
