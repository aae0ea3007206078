// Loads and validates agentlab's YAML config (Node only): embedded defaults, then the file, then env.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, homedir, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { AGENT_COMMANDS, AGENT_KINDS } from './agents';
import { firstAddress } from './ipv4';
import { BACKEND_KINDS, WORKFLOW_TASK_QUEUE, type ResolvedProfile } from './contract';
import type { Capacity } from './admission';
import { describeIssues, durationSchema } from './schemas';
import { BUNDLE_NAME_PATTERN } from './secrets';
import { packageRoot } from './paths';
import { apiKeyFileSchema, temporalTlsSchema } from './temporal-tls';

const hostPortSchema = z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port');
const loopbackHostPortSchema = z
  .string()
  .regex(/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost):\d{1,5}$/, 'expected a loopback host:port, e.g. 127.0.0.1:9464');

/** One authorized_keys line: a key type, its base64 blob and an optional comment (no options, one line). */
const SSH_PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;
const authorizedKeysSchema = z.array(
  z.string().regex(SSH_PUBLIC_KEY, 'expected an OpenSSH public key line, e.g. "ssh-ed25519 AAAAC3Nza… you@laptop"'),
);

const profileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and "-"'),
    description: z.string().prefault(''),
    backend: z.enum(BACKEND_KINDS),
    node: z.string().optional(),
    templateVmid: z.number().int().positive().optional(),
    resources: z
      .object({
        cores: z.number().int().positive().prefault(2),
        memoryMb: z.number().int().positive().prefault(2048),
        /** The root disk's size in GiB (proxmox: the clone's boot disk; qemu: the overlay); absent: the template's or image's. */
        diskGb: z
          .number({ error: 'expected a whole number of GiB, e.g. 32' })
          .int('expected a whole number of GiB, e.g. 32')
          .positive('expected a positive number of GiB')
          .optional(),
      })
      .strict()
      .prefault({ cores: 2, memoryMb: 2048 }),
    ttl: durationSchema.prefault('3h'),
    maxTtl: durationSchema.prefault('24h'),
    keepalive: z.boolean().prefault(false),
    /** The secrets bundle this profile's jobs receive at bootstrap (by name; never its content). */
    secretsBundle: z
      .string()
      .regex(BUNDLE_NAME_PATTERN, 'expected a bundle name: lowercase letters, digits, "_" and "-"')
      .optional(),
    agent: z
      .object({
        /** A known agent run non-interactively (see common/agents.ts); `command` overrides it. */
        kind: z.enum(AGENT_KINDS).prefault('claude'),
        /** The model the agent asks for (e.g. claude-sonnet-4-5, gpt-5.5); the agent's own default otherwise. */
        model: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, 'expected a model name')
          .optional(),
        command: z.string().min(1).optional(),
        /** How often the agent retries a failed model request, where it lets us choose (Claude Code, Codex). */
        maxRetries: z.number().int().min(0).max(20).optional(),
        timeout: durationSchema.optional(),
        /** A runner unheard for this long (no heartbeat; it sends one every 5 s) fails the job: its VM died. */
        silenceTimeout: durationSchema.prefault('3m'),
      })
      .strict()
      .prefault({}),
    provisioning: z
      .object({
        attempts: z.number().int().min(1).max(10).prefault(3),
        bootTimeout: durationSchema.prefault('5m'),
        bootstrapTimeout: durationSchema.prefault('10m'),
        /** How long the one-time bootstrap token stays valid after it was issued. */
        bootstrapTokenTtl: durationSchema.prefault('10m'),
      })
      .strict()
      .prefault({ attempts: 3, bootTimeout: '5m', bootstrapTimeout: '10m', bootstrapTokenTtl: '10m' }),
    teardown: z
      .object({ attempts: z.number().int().min(1).max(100).prefault(10) })
      .strict()
      .prefault({ attempts: 10 }),
    /** The keys this profile's Proxmox guests authorize for `sandbox ssh`; absent: the top-level `ssh.authorizedKeys`. */
    ssh: z.object({ authorizedKeys: authorizedKeysSchema }).strict().optional(),
  })
  .strict()
  .superRefine((profile, ctx) => {
    if (profile.backend === 'proxmox' && profile.templateVmid === undefined) {
      ctx.addIssue({ code: 'custom', path: ['templateVmid'], message: 'required for the proxmox backend' });
    }
    if (profile.ttl > profile.maxTtl) {
      ctx.addIssue({ code: 'custom', path: ['ttl'], message: 'must not exceed maxTtl' });
    }
  });
export type Profile = z.output<typeof profileSchema>;

/** The seed's three Proxmox profiles, the embedded `local` one and `qemu-ephemeral`. A config file may override any. */
const DEFAULT_PROFILES: z.input<typeof profileSchema>[] = [
  {
    name: 'yolo-ephemeral',
    description: 'One-shot job in a throwaway VM',
    backend: 'proxmox',
    templateVmid: 9000,
    resources: { cores: 4, memoryMb: 6144 },
    ttl: '3h',
    agent: { kind: 'claude' },
  },
  {
    name: 'yolo-workspace',
    description: 'Job whose sandbox stays up after the agent finishes',
    backend: 'proxmox',
    templateVmid: 9000,
    resources: { cores: 4, memoryMb: 6144 },
    ttl: '8h',
    keepalive: true,
    agent: { kind: 'claude' },
  },
  {
    name: 'interactive-dev',
    description: 'Human development session',
    backend: 'proxmox',
    templateVmid: 9000,
    resources: { cores: 6, memoryMb: 8192 },
    ttl: '12h',
    keepalive: true,
    agent: { kind: 'claude' },
  },
  {
    name: 'local',
    description: 'Sandbox on this host (the embedded default)',
    backend: 'local',
    ttl: '1h',
    agent: { kind: 'claude' },
  },
  {
    name: 'qemu-ephemeral',
    description: 'One-shot job in a throwaway QEMU VM on this host (worker.backends must include qemu)',
    backend: 'qemu',
    resources: { cores: 2, memoryMb: 2048, diskGb: 4 },
    ttl: '3h',
    agent: { kind: 'claude' },
  },
];

/** The Proxmox VE backend's connection and placement; the token secret never lives in this file's output. */
const proxmoxSchema = z
  .object({
    url: z.string().url(),
    tokenId: z.string().regex(/^[^@\s]+@[^!\s]+![A-Za-z][A-Za-z0-9._-]*$/, 'expected USER@REALM!TOKENID'),
    tokenSecretFile: z.string().optional(),
    tokenSecret: z.string().optional(),
    /** This host's name in the Proxmox cluster; absent: agentlab's own `node` (the host name), as on a PVE node. */
    node: z.string().optional(),
    caFile: z.string().optional(),
    fingerprint: z
      .string()
      .regex(/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/, 'expected a SHA-256 fingerprint AA:BB:…')
      .optional(),
    storage: z.string().optional(),
    snippetsDir: z.string().prefault('/var/lib/vz/snippets'),
    snippetStorage: z.string().prefault('local'),
    bridge: z.string().prefault('vmbr1'),
    cloneMode: z.enum(['linked', 'full']).prefault('linked'),
    /** Clones in flight per storage on this node; more would time out on PVE's storage lock. */
    cloneConcurrency: z.number().int().min(1).max(64).prefault(2),
  })
  .strict()
  .refine((p) => !(p.caFile && p.fingerprint), 'set caFile or fingerprint, not both');
export type ProxmoxConfig = z.output<typeof proxmoxSchema>;

const fileSchema = z
  .object({
    node: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/)
      .optional(),
    dataDir: z.string().optional(),
    temporal: z
      .object({
        address: hostPortSchema.optional(),
        namespace: z.string().optional(),
        /** Task queue of the workflows; host activities use `agentlab-host-<node>`. */
        taskQueue: z.string().optional(),
        uiUrl: z.string().url().optional(),
        /** TLS or mTLS to Temporal (a cluster's frontend, Temporal Cloud); files checked here, at load. */
        tls: temporalTlsSchema.optional(),
        /** Temporal Cloud's API key, sent as a bearer credential (over TLS, with or without a tls section). */
        apiKeyFile: apiKeyFileSchema.optional(),
        /** Encrypts every payload (task, repo, results, failure messages) with AES-256-GCM. */
        codec: z
          .object({
            keyFile: z.string().startsWith('/', 'expected an absolute path'),
            /** Where the worker serves /encode and /decode for the Web UI; loopback only. */
            endpointListen: loopbackHostPortSchema.prefault('127.0.0.1:8845'),
            /** Keys rotated out: still decrypt what was written with them, never encrypt (docs/rotate-secrets.md). */
            previousKeyFiles: z.array(z.string().startsWith('/', 'expected an absolute path')).prefault([]),
          })
          .strict()
          .optional(),
        /**
         * A long-lived sandbox's workflow continues as new past this many history events (Temporal also
         * suggests it at ~4k). Small histories replay fast when a worker restarts.
         */
        continueAsNewAfterEvents: z.number().int().min(20).prefault(2000),
      })
      .strict()
      .prefault({}),
    worker: z
      .object({
        backends: z.array(z.enum(BACKEND_KINDS)).prefault(['local']),
        shutdownGraceTime: durationSchema.prefault('30s'),
        /** Prometheus /metrics (agentlab's series and the SDK's); loopback only. */
        metricsListen: loopbackHostPortSchema.prefault('127.0.0.1:9464'),
        /** Where the SDK runtime's own exporter listens, scraped into metricsListen; loopback only. */
        sdkMetricsListen: loopbackHostPortSchema.prefault('127.0.0.1:9465'),
        /** How often this host's Schedule destroys orphaned VMs (ours, whose workflow has ended); `off` disables it. */
        reconcileInterval: z.union([z.literal('off'), durationSchema]).prefault('10m'),
        /**
         * How much of this host sandboxes may hold at once (the original system's pool_total_cores,
         * pool_total_memory_mb, pool_cpu_over_commit, pool_mem_over_commit); jobs beyond it wait in line.
         */
        admission: z
          .object({
            /** Default: the machine's cores (os.cpus()). */
            cores: z.number().int().positive().optional(),
            /** Default: the machine's memory (os.totalmem()). */
            memoryMb: z.number().int().positive().optional(),
            /** Sandboxes' cores may add up to this many times `cores` (they rarely all run flat out). */
            cpuOvercommit: z.number().positive().max(100).prefault(4),
            /** Memory is not overcommitted by default: past it the host swaps or kills. */
            memoryOvercommit: z.number().positive().max(100).prefault(1),
            /** While jobs wait, how often slots held by workflows that ended without releasing them are reclaimed. */
            reclaimInterval: durationSchema.prefault('1m'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({ backends: ['local'], shutdownGraceTime: '30s' }),
    guestApi: z
      .object({
        /** Default: the local bridge's gateway (namespaces isolation) or loopback (none), port 8844. */
        listen: hostPortSchema.optional(),
        /** The URL guests use; derived from `listen` when absent. */
        url: z.string().url().optional(),
        /** Largest artifact a guest may upload, in bytes (default 256 MiB). */
        maxArtifactBytes: z
          .number()
          .int()
          .positive()
          .prefault(256 * 1024 * 1024),
        /** Refused bootstrap calls allowed per source address: a burst, refilled at perMinute. */
        bootstrapRateLimit: z
          .object({
            burst: z.number().int().positive().prefault(10),
            perMinute: z.number().int().positive().prefault(10),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Job logs and artifacts for CLIs on other machines than the worker (the embedded stack shares dataDir). */
    operatorApi: z
      .object({
        /** Worker: where it serves them. Reachable by operators only; put TLS in front of it beyond a trusted LAN. */
        listen: hostPortSchema.optional(),
        /** Worker and CLI: the shared bearer token, one line of 32+ characters, mode 0600. */
        tokenFile: z.string().startsWith('/', 'expected an absolute path'),
        /** CLI: each node's operator API, e.g. { pve1: "http://pve1.internal:8846" }. */
        urls: z.record(z.string(), z.string().url()).prefault({}),
      })
      .strict()
      .optional(),
    vmidRange: z
      .object({ min: z.number().int().min(100), max: z.number().int().max(999_999_999) })
      .strict()
      .refine((r) => r.min <= r.max, 'min must not exceed max')
      .prefault({ min: 7000, max: 7999 }),
    local: z
      .object({
        /** Emulated VM latencies, for demos and tests of timing-sensitive paths. */
        cloneDelay: z.union([z.literal('0s'), durationSchema]).prefault('0s'),
        bootDelay: z.union([z.literal('0s'), durationSchema]).prefault('0s'),
        isolation: z.enum(['namespaces', 'none']).prefault('namespaces'),
        bridge: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name')
          .prefault('agentlab0'),
        /** Must not collide with Proxmox's vmbr1 (10.77.0.0/16); the gateway is its first address. */
        subnet: z
          .string()
          .regex(/^(\d{1,3}\.){3}\d{1,3}\/(1[6-9]|2[0-9])$/, 'expected an IPv4 subnet a.b.c.d/16..29')
          .prefault('10.78.0.0/22'),
        uplink: z.string().optional(),
        /** Gone: a sandbox now gets a copy of its own job's repository, wherever that is, and no other. */
        repoRoots: z
          .unknown()
          .refine(() => false, 'no longer used: a job may name any repository its CLI user can read; remove it')
          .optional(),
        /** Host paths hidden inside sandboxes even where they see the host (system directories, /etc). */
        maskPaths: z.array(z.string().startsWith('/')).prefault([]),
        /** The DNS forwarder on the gateway (isolated sandboxes). Upstreams default to the host's resolvers. */
        dns: z
          .object({
            enabled: z.boolean().prefault(true),
            upstreams: z
              .array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'expected an IPv4 address'))
              .min(1)
              .optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    proxmox: proxmoxSchema.optional(),
    /** The qemu backend (worker.backends: [qemu]): VMs on the `local` section's bridge and subnet. */
    qemu: z
      .object({
        /** A guest image directory (scripts/build-guest-image.sh prints it); absent: built or taken from the cache. */
        imageDir: z.string().startsWith('/', 'expected an absolute path').optional(),
        /** `auto`: KVM when a kernel really boots under it (probed once per host boot), else TCG. */
        accelerator: z.enum(['auto', 'kvm', 'tcg']).prefault('auto'),
      })
      .strict()
      .prefault({}),
    /** The agent CLIs' tools directory (`agentlab agents install`), shown read-only to local sandboxes. */
    agents: z
      .object({ dir: z.string().startsWith('/', 'expected an absolute path').optional() })
      .strict()
      .prefault({}),
    /** `sandbox ssh`: the operators' public keys every Proxmox guest authorizes, and the CLI's private key. */
    ssh: z
      .object({
        authorizedKeys: authorizedKeysSchema.prefault([]),
        identityFile: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    profiles: z.array(z.unknown()).prefault([]),
  })
  .strict();

/**
 * What the rest of agentlab reads: the file's schema, transformed against the environment (its overrides,
 * the Proxmox secret) and the machine (hostname, cores, memory). Declared by the transform alone, so the
 * type cannot drift from what parsing produces.
 */
export type AgentlabConfig = ReturnType<typeof resolveConfig>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.AGENTLAB_CONFIG) return env.AGENTLAB_CONFIG;
  const userConfig = join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'agentlab', 'config.yaml');
  for (const candidate of ['/etc/agentlab/config.yaml', userConfig]) if (existsSync(candidate)) return candidate;
  return undefined;
}

function defaultDataDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'agentlab');
}

const zeroOr = (value: number | '0s'): number => (value === '0s' ? 0 : value);

/** Where `npm run demo` puts its example repositories; the default local repo root. */

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
  if (!parsed.success) throw new ConfigError(`${source}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** The file's settings with every default filled in; profiles checked one by one, so errors name their index. */
function resolveConfig(file: z.output<typeof fileSchema>, source: string, env: NodeJS.ProcessEnv) {
  const profiles = new Map<string, Profile>();
  const overrides = file.profiles.map((p, i) => {
    const result = profileSchema.safeParse(p);
    if (!result.success) throw new ConfigError(`${source}: ${describeIssues(result.error, `profiles.${i}`)}`);
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
    node:
      file.node ??
      hostname()
        .split('.')[0]!
        .replace(/[^A-Za-z0-9.-]/g, '-'),
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

/** The configured cores and memory (else the machine's), times their overcommit factors. */
function hostCapacity(admission: {
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
