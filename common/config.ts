// Loads and validates agentlab's YAML config (Node only): embedded defaults, then the file, then env.
// The schema is in common/config-schema.ts and common/config-profiles.ts; machine-derived defaults in
// common/config-defaults.ts. This file reads the file and resolves it into what the rest of agentlab reads.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { AGENT_COMMANDS } from './agents';
import { firstAddress } from './ipv4';
import { WORKFLOW_TASK_QUEUE, type ResolvedProfile } from './contract';
import { describeIssues } from './schemas';
import { packageRoot } from './paths';
import { DEFAULT_PROFILES, profileSchema } from './config-profiles';
import { fileSchema, proxmoxSchema, type ConfigFile } from './config-schema';
import { defaultConfigPath, defaultDataDir, defaultNode, hostCapacity } from './config-defaults';

export type Profile = z.output<typeof profileSchema>;
export type ProxmoxConfig = z.output<typeof proxmoxSchema>;

/**
 * What the rest of agentlab reads: the file's schema, transformed against the environment (its overrides,
 * the Proxmox secret) and the machine (hostname, cores, memory). Declared by the transform alone, so the
 * type cannot drift from what parsing produces.
 */
export type AgentlabConfig = ReturnType<typeof resolveConfig>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Every config error names its source first: the file's path or `embedded defaults`. */
function invalidConfig(source: string, error: z.ZodError, prefix?: string): ConfigError {
  return new ConfigError(`${source}: ${describeIssues(error, prefix)}`);
}

const zeroOr = (value: number | '0s'): number => (value === '0s' ? 0 : value);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AgentlabConfig {
  const path = defaultConfigPath(env);
  let raw: unknown = {};
  if (path) {
    if (!existsSync(path)) throw new ConfigError(`config file ${path} (from AGENTLAB_CONFIG) does not exist`);
    try {
      raw = YAML.parse(readFileSync(path, 'utf8')) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
    }
  }
  return parseConfig(raw, path ?? 'embedded defaults', env);
}

export function parseConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): AgentlabConfig {
  const parsed = fileSchema.transform((file) => resolveConfig(file, source, env)).safeParse(raw);
  if (!parsed.success) throw invalidConfig(source, parsed.error);
  return parsed.data;
}

/** The file's settings with every default filled in; profiles checked one by one, so errors name their index. */
function resolveConfig(file: ConfigFile, source: string, env: NodeJS.ProcessEnv) {
  const profiles = new Map<string, Profile>();
  const overrides = file.profiles.map((p, i) => {
    const result = profileSchema.safeParse(p);
    if (!result.success) throw invalidConfig(source, result.error, `profiles.${i}`);
    return result.data;
  });
  for (const profile of [...DEFAULT_PROFILES.map((p) => profileSchema.parse(p)), ...overrides]) {
    profiles.set(profile.name, { ...profile, ssh: profile.ssh ?? { authorizedKeys: file.ssh.authorizedKeys } });
  }

  const gateway = firstAddress(file.local.subnet);
  // Sandboxes on the bridge (isolated local ones, QEMU VMs) reach the guest API on its gateway.
  const onBridge = file.local.isolation === 'namespaces' || file.worker.backends.includes('qemu');
  const defaultListen = `${onBridge ? gateway : '127.0.0.1'}:8844`;
  const [host, port] = (file.guestApi.listen ?? defaultListen).split(':') as [string, string];
  const address = env.TEMPORAL_ADDRESS ?? file.temporal.address ?? '127.0.0.1:7233';
  const uiUrl = env.AGENTLAB_TEMPORAL_UI_URL ?? file.temporal.uiUrl ?? 'http://127.0.0.1:8233';
  return {
    source,
    node: file.node ?? defaultNode(),
    dataDir: file.dataDir ?? defaultDataDir(env),
    temporal: {
      address,
      namespace: env.TEMPORAL_NAMESPACE ?? file.temporal.namespace ?? 'default',
      taskQueue: file.temporal.taskQueue ?? WORKFLOW_TASK_QUEUE,
      uiUrl,
      tls: file.temporal.tls,
      apiKeyFile: file.temporal.apiKeyFile,
      codec: file.temporal.codec,
      continueAsNewAfterEvents: file.temporal.continueAsNewAfterEvents,
    },
    worker: {
      backends: file.worker.backends,
      shutdownGraceTimeMs: file.worker.shutdownGraceTime,
      metricsListen: file.worker.metricsListen,
      sdkMetricsListen: file.worker.sdkMetricsListen,
      /** undefined: no reconcile Schedule. */
      reconcileIntervalMs: file.worker.reconcileInterval === 'off' ? undefined : file.worker.reconcileInterval,
      /** What sandboxes on this host may hold at once, overcommit applied. */
      admission: {
        capacity: hostCapacity(file.worker.admission),
        reclaimIntervalMs: file.worker.admission.reclaimInterval,
      },
    },
    operatorApi: file.operatorApi,
    guestApi: {
      host,
      port: Number(port),
      url: file.guestApi.url ?? `http://${host}:${port}`,
      maxArtifactBytes: file.guestApi.maxArtifactBytes,
      bootstrapRateLimit: file.guestApi.bootstrapRateLimit,
    },
    vmidRange: file.vmidRange,
    // Beside the pinned Temporal CLI by default: one cache for the demo, the tests and the worker.
    agents: { dir: file.agents.dir ?? join(packageRoot(), '.tools', 'agents') },
    local: {
      cloneDelayMs: zeroOr(file.local.cloneDelay),
      bootDelayMs: zeroOr(file.local.bootDelay),
      isolation: file.local.isolation,
      bridge: file.local.bridge,
      subnet: file.local.subnet,
      gateway,
      uplink: file.local.uplink,
      maskPaths: file.local.maskPaths,
      /** undefined: no forwarder; the upstreams otherwise (empty: the host's resolv.conf, read at start). */
      dnsUpstreams: file.local.dns.enabled ? (file.local.dns.upstreams ?? []) : undefined,
    },
    /** Profiles with their `ssh.authorizedKeys` resolved (their own, else the top-level list). */
    profiles,
    ssh: file.ssh,
    qemu: file.qemu,
    /** With the secret resolved from AGENTLAB_PROXMOX_TOKEN_SECRET, tokenSecret or tokenSecretFile. */
    proxmox: file.proxmox && {
      ...file.proxmox,
      tokenSecret: env.AGENTLAB_PROXMOX_TOKEN_SECRET ?? file.proxmox.tokenSecret,
    },
  };
}

/** The workflow's view of a profile: plain numbers, resolved for one node. */
export function resolveProfile(profile: Profile, node: string): ResolvedProfile {
  return {
    name: profile.name,
    backend: profile.backend,
    node: profile.node ?? node,
    ttlMs: profile.ttl,
    maxTtlMs: profile.maxTtl,
    keepalive: profile.keepalive,
    agentCommand: profile.agent.command ?? AGENT_COMMANDS[profile.agent.kind],
    // A command of the operator's own is not one of ours to prepare: no kind then.
    ...(profile.agent.command ? {} : { agentKind: profile.agent.kind }),
    ...(profile.agent.model ? { agentModel: profile.agent.model } : {}),
    ...(profile.agent.maxRetries !== undefined ? { agentMaxRetries: profile.agent.maxRetries } : {}),
    agentTimeoutMs: profile.agent.timeout ?? 0,
    guestSilenceMs: profile.agent.silenceTimeout,
    provisioningAttempts: profile.provisioning.attempts,
    bootTimeoutMs: profile.provisioning.bootTimeout,
    bootstrapTimeoutMs: profile.provisioning.bootstrapTimeout,
    bootstrapTokenTtlMs: profile.provisioning.bootstrapTokenTtl,
    secretsBundle: profile.secretsBundle,
    teardownAttempts: profile.teardown.attempts,
    cores: profile.resources.cores,
    memoryMb: profile.resources.memoryMb,
    ...(profile.resources.diskGb !== undefined ? { diskGb: profile.resources.diskGb } : {}),
    templateVmid: profile.templateVmid,
    ...(profile.ssh?.authorizedKeys.length ? { sshAuthorizedKeys: profile.ssh.authorizedKeys } : {}),
  };
}
