// The config file's schema, section by section (profiles: common/config-profiles.ts); defaults that need
// the environment or the machine are filled in by common/config.ts, not here.
import { z } from 'zod';
import { BACKEND_KINDS } from './contract';
import { authorizedKeysSchema } from './config-profiles';
import { durationSchema } from './schemas';
import { apiKeyFileSchema, temporalTlsSchema } from './temporal-tls';

const hostPortSchema = z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port');
const loopbackHostPortSchema = z
  .string()
  .regex(/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost):\d{1,5}$/, 'expected a loopback host:port, e.g. 127.0.0.1:9464');

/** The Proxmox VE backend's connection and placement; the token secret never lives in this file's output. */
export const proxmoxSchema = z
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

export const fileSchema = z
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
export type ConfigFile = z.output<typeof fileSchema>;
