// The shapes of the CLI's --json documents: the contract scripts rely on, checked by the CLI tests.
import { z } from 'zod';
import { JOB_STATUSES, SANDBOX_STATES } from '../common/states';
import { ACCESS_KINDS } from '../common/contract';
import { WORKSPACE_STATUSES } from '../common/workspace';

const isoTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
const state = z.enum(SANDBOX_STATES);
const jobStatus = z.enum(JOB_STATUSES);

export const jobDocumentSchema = z
  .object({
    jobId: z.string(),
    status: jobStatus,
    /** Where a QUEUED job waits for its host's capacity (1 = next); null when it does not wait. */
    placeInLine: z.number().int().positive().nullable(),
    exitCode: z.number().int().nullable(),
    message: z.string().nullable(),
    profile: z.string(),
    repo: z.string().nullable(),
    ref: z.string().nullable(),
    /** The persistent workspace the job attaches at /workspace. */
    workspace: z.string().nullable(),
    sandbox: z
      .object({
        vmid: z.number().int().nullable(),
        state,
        node: z.string().nullable(),
        address: z.string().nullable(),
        leaseExpiresAt: isoTime.nullable(),
        keepalive: z.boolean(),
        cleanSnapshot: z.boolean(),
      })
      .strict(),
    // `signal`: an entry recording a Signal the rules refused (the state did not change); `access`: a person
    // who got in (`sandbox shell`, `sandbox ssh`).
    timeline: z.array(
      z
        .object({
          state,
          at: isoTime,
          note: z.string().optional(),
          signal: z.string().optional(),
          access: z
            .object({ kind: z.enum(ACCESS_KINDS), user: z.string(), host: z.string(), node: z.string() })
            .strict()
            .optional(),
        })
        .strict(),
    ),
  })
  .strict();

export const jobListSchema = z
  .object({
    jobs: z.array(
      z.object({
        jobId: z.string(),
        state: state.optional(),
        jobStatus: jobStatus.optional(),
        profile: z.string().optional(),
        vmid: z.number().int().optional(),
        node: z.string().optional(),
        leaseExpiresAt: z.number().optional(),
        repo: z.string().optional(),
        task: z.string().optional(),
        memoUnreadable: z.string().optional(),
        startedAt: z.number(),
        closedAt: z.number().optional(),
        executionStatus: z.string(),
        placeInLine: z.number().int().positive().optional(),
      }),
    ),
  })
  .strict();

export const sandboxListSchema = z
  .object({
    sandboxes: z.array(
      z
        .object({
          vmid: z.number().int().nullable(),
          state: state.optional(),
          jobId: z.string(),
          jobStatus: jobStatus.optional(),
          profile: z.string().optional(),
          node: z.string().nullable(),
          leaseExpiresAt: isoTime.nullable(),
        })
        .strict(),
    ),
  })
  .strict();

export const revertSchema = z
  .object({ jobId: z.string(), state, snapshot: z.literal('clean'), restarted: z.boolean() })
  .strict();

export const jobApplySchema = z
  .object({
    jobId: z.string(),
    repo: z.string(),
    branch: z.string(),
    commit: z.string().regex(/^[0-9a-f]{40,64}$/),
    baseCommit: z.string().regex(/^[0-9a-f]{40,64}$/),
    filesChanged: z.number().int().positive(),
  })
  .strict();

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown() }).strict() })
  .strict();

export const statusSchema = z
  .object({
    temporal: z.object({ address: z.string(), reachable: z.boolean(), pid: z.number().nullable() }).strict(),
    worker: z.object({ guestApi: z.string(), healthy: z.boolean(), pid: z.number().nullable() }).strict(),
    webUi: z.string(),
    sandboxes: z.record(z.string(), z.number().int()),
    recentFailures: z.array(z.object({ jobId: z.string(), state: state.optional(), startedAt: isoTime.optional() })),
  })
  .strict();

/** `workspace show --json` and `workspace create --json`. */
export const workspaceDocumentSchema = z
  .object({
    name: z.string(),
    status: z.enum(WORKSPACE_STATUSES),
    sizeGb: z.number().int().positive(),
    node: z.string(),
    backend: z.enum(['local', 'proxmox']),
    profile: z.string(),
    createdAt: isoTime,
    holder: z.object({ jobId: z.string(), since: isoTime }).strict().nullable(),
    waiting: z.array(z.object({ jobId: z.string(), since: isoTime }).strict()),
    attachments: z.array(
      z
        .object({
          jobId: z.string(),
          vmid: z.number().int().nullable(),
          grantedAt: isoTime,
          releasedAt: isoTime.nullable(),
          note: z.string().optional(),
        })
        .strict(),
    ),
    error: z.string().nullable(),
  })
  .strict();
