// A profile's schema and the profiles agentlab embeds: what one kind of sandbox gets (backend, size, lease, agent).
import { z } from 'zod';
import { AGENT_KINDS } from './agents';
import { BACKEND_KINDS } from './contract';
import { durationSchema } from './schemas';
import { BUNDLE_NAME_PATTERN } from './secrets';

/** One authorized_keys line: a key type, its base64 blob and an optional comment (no options, one line). */
const SSH_PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;
export const authorizedKeysSchema = z.array(
  z.string().regex(SSH_PUBLIC_KEY, 'expected an OpenSSH public key line, e.g. "ssh-ed25519 AAAAC3Nza… you@laptop"'),
);

export const profileSchema = z
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

/** The seed's three Proxmox profiles, the embedded `local` one and `qemu-ephemeral`. A config file may override any. */
export const DEFAULT_PROFILES: z.input<typeof profileSchema>[] = [
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
