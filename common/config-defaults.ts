// The defaults that depend on where agentlab runs: the environment (XDG paths, AGENTLAB_CONFIG) and the machine
// (host name, cores, memory).
import { existsSync } from 'node:fs';
import { cpus, homedir, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Capacity } from './admission';

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.AGENTLAB_CONFIG) return env.AGENTLAB_CONFIG;
  const userConfig = join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'agentlab', 'config.yaml');
  for (const candidate of ['/etc/agentlab/config.yaml', userConfig]) if (existsSync(candidate)) return candidate;
  return undefined;
}

export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'agentlab');
}

/** This host's short name, made a valid `node` value. */
export function defaultNode(): string {
  return hostname()
    .split('.')[0]!
    .replace(/[^A-Za-z0-9.-]/g, '-');
}

/** The configured cores and memory (else the machine's), times their overcommit factors. */
export function hostCapacity(admission: {
  cores?: number;
  memoryMb?: number;
  cpuOvercommit: number;
  memoryOvercommit: number;
}): Capacity {
  const cores = admission.cores ?? Math.max(1, cpus().length);
  const memoryMb = admission.memoryMb ?? Math.floor(totalmem() / (1024 * 1024));
  return {
    cores: Math.floor(cores * admission.cpuOvercommit),
    memoryMb: Math.floor(memoryMb * admission.memoryOvercommit),
  };
}
