// Helpers for the model API tests: where the real agent CLIs are, a scratch git repo, running an agent against the server.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentKind } from '../../common/agents';
import { agentInvocation, VERIFIED_AGENT_PACKAGES } from '../../simulators/model-api/agent-invocations';
import type { ModelApiServer } from '../../simulators/model-api/server';

/** `AGENTLAB_AGENTS_DIR` (default /tmp/agents-try): an npm prefix with the three agents installed. Missing → fail. */
export function agentsBinDir(): string {
  const dir = process.env.AGENTLAB_AGENTS_DIR ?? '/tmp/agents-try';
  const binDir = join(dir, 'node_modules', '.bin');
  const missing = (['claude', 'codex', 'opencode'] as const).filter((name) => !existsSync(join(binDir, name)));
  if (missing.length > 0) {
    const packages = Object.values(VERIFIED_AGENT_PACKAGES).join(' ');
    throw new Error(
      `AGENTLAB_AGENTS_DIR=${dir} lacks ${missing.join(', ')} in node_modules/.bin; ` +
        `install them with: npm install --prefix ${dir} ${packages}`,
    );
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
  server: ModelApiServer;
  scratch: Scratch;
  task: string;
  key?: string;
  maxRetries?: number;
}

/** Starts the real CLI as a child process in the scratch repo, with only the environment its recipe gives it. */
export function startAgent(kind: AgentKind, options: RunOptions): StartedAgent {
  const invocation = agentInvocation(kind, {
    binDir: agentsBinDir(),
    baseUrl: options.server.url,
    key: options.key ?? KEY,
    home: options.scratch.home,
    task: options.task,
    maxRetries: options.maxRetries,
    path: process.env.PATH,
  });
  const started = Date.now();
  const child = spawn(invocation.command, invocation.args, {
    cwd: options.scratch.repo,
    env: invocation.env,
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
export function modelTurns(server: ModelApiServer) {
  return server.requests
    .filter((r) => r.reply === 'tool_call' || r.reply === 'finish')
    .map((r) => ({ step: r.step, reply: r.reply, tool: r.tool, toolResult: r.toolResult }));
}

export const describeOutput = (result: AgentResult): string =>
  `exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;
