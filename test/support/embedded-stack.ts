// A throwaway home for `agentlab up` tests: a config on free ports, the CLI run against it, and a
// census of what it left running (pid files, processes that name the home, listening ports).
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { isAlive } from '../../common/process-alive';
import { CLI, freePort } from './stack';

export interface EmbeddedStack {
  home: string;
  configPath: string;
  dataDir: string;
  ports: { temporal: number; ui: number; guest: number; metrics: number; sdkMetrics: number };
}

/** `sections` replace the defaults' top-level sections whole (e.g. `local`, `operatorApi`). */
export async function embeddedStack(sections: Record<string, unknown> = {}): Promise<EmbeddedStack> {
  const home = mkdtempSync(join(tmpdir(), 'agentlab-up-'));
  const [temporal, ui, guest, metrics, sdkMetrics] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const stack = {
    home,
    configPath: join(home, 'config.yaml'),
    dataDir: join(home, 'data'),
    ports: { temporal, ui, guest, metrics, sdkMetrics },
  };
  const config = {
    dataDir: stack.dataDir,
    temporal: { address: `127.0.0.1:${temporal}`, uiUrl: `http://127.0.0.1:${ui}` },
    guestApi: { listen: `127.0.0.1:${guest}` },
    worker: { metricsListen: `127.0.0.1:${metrics}`, sdkMetricsListen: `127.0.0.1:${sdkMetrics}` },
    local: { isolation: 'none' },
    ...sections,
  };
  writeFileSync(stack.configPath, YAML.stringify(config));
  return stack;
}

export function agentlab(
  stack: EmbeddedStack,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
) {
  return execa(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...options.env, AGENTLAB_CONFIG: stack.configPath },
    extendEnv: false,
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
  });
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * Live processes of this stack: those its pid files name, and any whose command line or environment
 * names its home (the dev server's --db-filename, the worker's AGENTLAB_CONFIG).
 */
export function liveProcesses(stack: EmbeddedStack): number[] {
  const stackDir = join(stack.dataDir, 'stack');
  const fromPidFiles = existsSync(stackDir)
    ? readdirSync(stackDir)
        .filter((f) => f.endsWith('.pid'))
        .map((f) => Number(readOr(join(stackDir, f), '0')))
    : [];
  const naming = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((pid) => `${readOr(`/proc/${pid}/cmdline`, '')}${readOr(`/proc/${pid}/environ`, '')}`.includes(stack.home))
    .map(Number);
  return [...new Set([...fromPidFiles, ...naming])].filter((pid) => pid > 0 && isAlive(pid));
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The ports `up` listens on that are still held, by anyone. */
export async function heldPorts(stack: EmbeddedStack): Promise<number[]> {
  const ports = Object.values(stack.ports);
  const free = await Promise.all(ports.map(portFree));
  return ports.filter((_, i) => !free[i]);
}
