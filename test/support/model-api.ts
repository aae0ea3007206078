// Helpers for the model API tests: where the real agent CLIs are, a scratch git repo, running an agent against the server.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import type { AgentKind } from '../../common/agents';
import { agentsBinDir as toolsBinDir } from '../../common/agent-tools';
import { parseConfig } from '../../common/config';
import { agentInvocation } from '../../simulators/model-api/agent-invocations';
import type { LoggedRequest } from '../../simulators/model-api/server';

/** The agent CLIs of the default tools directory, which the test run's global setup installs. */
export function agentsBinDir(): string {
  const dir = process.env.AGENTLAB_AGENTS_DIR ?? parseConfig({}, 'embedded defaults', {}).agents.dir;
  const binDir = toolsBinDir(dir);
  const missing = (['claude', 'codex', 'opencode'] as const).filter((name) => !existsSync(join(binDir, name)));
  if (missing.length > 0) {
    throw new Error(`${dir} lacks ${missing.join(', ')}: install them with agentlab agents install`);
  }
  return binDir;
}

export const KEY = 'sk-agentlab-test-3f9c1e7a5b2d4c6e8f0a1b2c3d4e5f60';

export interface Scratch {
  repo: string;
  home: string;
  cleanup(): void;
}

/** A git repository with one commit (so `git status` shows exactly what the agent added) and an empty home. */
export function scratch(): Scratch {
  const root = mkdtempSync(join(tmpdir(), 'model-api-'));
  const repo = join(root, 'repo');
  const home = join(root, 'home');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, stdio: 'pipe' });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  writeFileSync(join(repo, 'README.md'), '# scratch\n');
  git('add', '.');
  git('-c', 'user.name=agentlab', '-c', 'user.email=agentlab@localhost', 'commit', '-qm', 'initial');
  return { repo, home, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export function gitStatus(repo: string): string {
  return execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: repo, encoding: 'utf8' });
}

export interface AgentResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface StartedAgent {
  child: ChildProcess;
  done: Promise<AgentResult>;
}

export interface RunOptions {
  baseUrl: string;
  scratch: Scratch;
  task: string;
  key?: string;
  maxRetries?: number;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Added to the recipe's environment (proxy variables for the trap). */
  extraEnv?: Record<string, string>;
}

/** Starts the real CLI as a child process in the scratch repo, with only the environment its recipe gives it. */
export function startAgent(kind: AgentKind, options: RunOptions): StartedAgent {
  const invocation = agentInvocation(kind, {
    binDir: agentsBinDir(),
    baseUrl: options.baseUrl,
    key: options.key ?? KEY,
    home: options.scratch.home,
    task: options.task,
    maxRetries: options.maxRetries,
    path: process.env.PATH,
  });
  const started = Date.now();
  const [command, args] = options.netns
    ? ['ip', ['netns', 'exec', options.netns, invocation.command, ...invocation.args]]
    : [invocation.command, invocation.args];
  const child = spawn(command, args, {
    cwd: options.scratch.repo,
    env: { ...invocation.env, ...options.extraEnv },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: `codex` is a Node wrapper around the native binary, and both must go on a kill.
    detached: true,
  });
  child.stdin!.end(invocation.stdin);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<AgentResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  return { child, done };
}

/** Kills the agent and whatever it started. */
export function stopAgent(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** Runs an agent to its end, killed after `timeoutMs` so that a broken agent fails the test instead of hanging it. */
export async function runAgent(kind: AgentKind, options: RunOptions, timeoutMs = 90_000): Promise<AgentResult> {
  const { child, done } = startAgent(kind, options);
  const timer = setTimeout(() => stopAgent(child), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/** The model turns the server answered (tool calls and finishes), leaving out side requests such as titles. */
export function modelTurns(requests: LoggedRequest[]) {
  return requests
    .filter((r) => r.reply === 'tool_call' || r.reply === 'finish')
    .map((r) => ({ step: r.step, reply: r.reply, tool: r.tool, toolResult: r.toolResult }));
}

export const describeOutput = (result: AgentResult): string =>
  `exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;

/**
 * An HTTP(S) proxy that only records what it is asked for and refuses it: with the proxy variables pointing at it
 * (the model API on loopback excepted), any other connection an agent tries shows up in `seen`.
 */
export async function startProxyTrap(): Promise<{
  env: Record<string, string>;
  seen: string[];
  close(): Promise<void>;
}> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    seen.push(`CONNECT ${req.url}`);
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env: Record<string, string> = { NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY']) {
    env[name] = url;
    env[name.toLowerCase()] = url;
  }
  return {
    env,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The model API as its own process (main.js) inside a network namespace: URL from its first line, log from a file. */
export async function startModelApiIn(
  netns: string,
  logFile: string,
  key = KEY,
): Promise<{ url: string; stop(): void }> {
  const main = join(__dirname, '../../dist/simulators/model-api/main.js');
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, main, '--port', '0', '--log', logFile], {
    env: { ...process.env, AGENTLAB_MODEL_API_KEY: key },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`model API exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).once('line', resolve);
  });
  return { url: (JSON.parse(line) as { url: string }).url, stop: () => child.kill('SIGTERM') };
}

export const readRequestLog = (logFile: string): LoggedRequest[] =>
  existsSync(logFile)
    ? readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as LoggedRequest)
    : [];
