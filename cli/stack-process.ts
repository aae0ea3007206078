// The embedded stack's processes: started detached with a pid file and a log under <dataDir>/stack/,
// watched while they start (their exit is reported at once, with the error line from their log), stopped.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentlabConfig } from '../common/config';
import { isAlive } from '../common/process-alive';
import { CliError, ExitCode } from './errors';
import { portHolder, portInUse } from './port-holder';

export const stackDir = (config: AgentlabConfig) => join(config.dataDir, 'stack');
const pidFile = (config: AgentlabConfig, name: string) => join(stackDir(config), `${name}.pid`);

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Where this start's output begins: the log is appended to across starts. */
  logOffset: number;
  /** Settles when the process exits; pending while it runs. */
  exited: Promise<Exit>;
}

export function readPid(config: AgentlabConfig, name: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(config, name), 'utf8'));
  } catch {
    return undefined;
  }
  return isAlive(pid) ? pid : undefined;
}

export async function spawnDetached(
  config: AgentlabConfig,
  name: string,
  command: string,
  args: string[],
): Promise<StartedProcess> {
  mkdirSync(stackDir(config), { recursive: true });
  const logFile = join(stackDir(config), `${name}.log`);
  const log = openSync(logFile, 'a');
  const logOffset = fstatSync(log).size;
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env: process.env });
  closeSync(log);
  if (child.pid === undefined) {
    const [err] = (await once(child, 'error')) as [Error];
    throw new CliError(`cannot start ${name} (${command}): ${err.message}`, ExitCode.failed, 'start_failed', {
      process: name,
    });
  }
  // Watched only while `up` runs: unref'd, it outlives `up` as a daemon would.
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.unref();
  writeFileSync(pidFile(config, name), String(child.pid));
  return { name, pid: child.pid, logFile, logOffset, exited };
}

function readFrom(file: string, offset: number): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(Math.max(0, fstatSync(fd).size - offset));
    readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The line that says why a process stopped: the last pino error line (level ≥ 50: its err.message, else
 * msg) or printed error ("XError: …", "Error: …", as Node's console.error and Go's CLIs print them),
 * whichever comes last; else the last line.
 */
export function errorLine(log: string): string | undefined {
  let found: string | undefined;
  const lines = log.split('\n').filter((line) => line.trim() !== '');
  for (const line of lines) {
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
        if ((entry.level ?? 0) >= 50) found = entry.err?.message || entry.msg || found;
        continue;
      } catch {
        // not JSON after all: read it as text
      }
    }
    const printed = /^(?:[A-Za-z]*Error|Uncaught \w+)(?: \[\w+\])?: (.+)$/.exec(line);
    if (printed) found = printed[1];
  }
  return found ?? lines.at(-1)?.trim();
}

function describeExit(exit: Exit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** A process that exited while starting: its own error line, who holds the port it wanted, its log. */
function startupFailure(proc: StartedProcess, what: string, exit: Exit, portOwners: Map<number, string>): CliError {
  const line = errorLine(readFrom(proc.logFile, proc.logOffset)) ?? 'it printed nothing';
  const port = portInUse(line);
  const holder = port === undefined ? undefined : portHolder(port);
  const setting = port === undefined ? undefined : portOwners.get(port);
  const fix =
    port === undefined
      ? ''
      : `; port ${port} is ${holder ? `held by pid ${holder.pid} (${holder.command})` : 'in use'}: ` +
        `stop it or set ${setting ?? 'the setting that names that port'} to a free port`;
  return new CliError(
    `${what} exited during start-up (${describeExit(exit)}): ${line}${fix}; see ${proc.logFile}`,
    ExitCode.failed,
    'start_failed',
    {
      process: proc.name,
      pid: proc.pid,
      exitCode: exit.code,
      signal: exit.signal,
      error: line,
      log: proc.logFile,
      ...(port === undefined ? {} : { port, holder: holder ?? null }),
    },
  );
}

/**
 * Waits until `check` passes; the process exiting first is a start_failed error at once, no answer
 * within the timeout is "unavailable". `portOwners` names the setting behind each port it listens on.
 */
export async function waitUntilUp(
  proc: StartedProcess,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  portOwners: Map<number, string>,
): Promise<void> {
  const exited = proc.exited.then((exit) => ({ exit }));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const checked = await Promise.race([exited, check().then((up) => ({ up }))]);
    if ('exit' in checked) throw startupFailure(proc, what, checked.exit, portOwners);
    if (checked.up) return;
    const slept = await Promise.race([exited, sleep(250).then(() => undefined)]);
    if (slept) throw startupFailure(proc, what, slept.exit, portOwners);
  }
  throw new CliError(
    `${what} did not come up within ${timeoutMs / 1000}s; see ${proc.logFile}`,
    ExitCode.unavailable,
    'unavailable',
  );
}

/** SIGTERM, then SIGKILL after `timeoutMs`; false when it was not running. */
export async function stopProcess(config: AgentlabConfig, name: string, timeoutMs: number): Promise<boolean> {
  const pid = readPid(config, name);
  rmSync(pidFile(config, name), { force: true });
  if (!pid) return false;
  const signal = (name: NodeJS.Signals | 0): boolean => {
    try {
      process.kill(pid, name);
      return true;
    } catch {
      return false; // it is gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + timeoutMs;
  // SIGKILL past the deadline, then a little longer for it to go (a process in D state may not).
  while (signal(0) && Date.now() < deadline + 5000) {
    if (Date.now() > deadline) signal('SIGKILL');
    await sleep(100);
  }
  return true;
}
