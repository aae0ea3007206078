// zod schemas for everything that crosses a boundary: job requests, repo URLs, durations.
import { z } from 'zod';
import { isCommitId, isLocalRepo, refProblem, repoUrlProblem } from '../guest/git-input';
import { parseDuration } from './duration';
import type { BackendKind } from './contract';
import { WORKSPACE_NAME_PATTERN, WORKSPACE_NAME_RULE } from './workspace';

export const workspaceNameSchema = z.string().regex(WORKSPACE_NAME_PATTERN, WORKSPACE_NAME_RULE);

/** Repository URLs as a job request carries them: a local path only as an absolute path with a pinned commit. */
export const repoUrlSchema = z.string().superRefine((repo, ctx) => {
  const problem = repoUrlProblem(repo, { allowLocal: true, allowLoopbackHttp: true });
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A git ref by `git check-ref-format`'s rules (one level allowed), never an option. */
export const gitRefSchema = z.string().superRefine((ref, ctx) => {
  const problem = refProblem(ref);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const durationSchema = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration: expected e.g. 90s, 15m, 3h or 1h30m` });
    return z.NEVER;
  }
  return ms;
});

export const jobIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{2,62}$/,
    'expected 3-63 lowercase letters, digits or "-", starting with a letter or digit',
  );

export const jobRequestSchema = z
  .object({
    jobId: jobIdSchema,
    repo: repoUrlSchema.optional(),
    ref: gitRefSchema.optional(),
    /** The commit `ref` named when the CLI read the local repository: the job sees exactly this. */
    commit: z.string().refine(isCommitId, 'expected a full 40-character commit id').optional(),
    task: z.string().min(1, 'must not be empty').max(100_000).optional(),
    profile: z.string().min(1),
    ttlMs: z.number().int().positive().optional(),
    keepalive: z.boolean().optional(),
    agentCommand: z.string().min(1).max(4096).optional(),
    node: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/)
      .optional(),
    workspace: z.object({ name: workspaceNameSchema, wait: z.boolean().optional() }).strict().optional(),
  })
  .strict()
  .superRefine((req, ctx) => {
    if ((req.repo === undefined) !== (req.task === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['task'], message: 'a job needs both a repo and a task' });
    }
    if (req.repo !== undefined && isLocalRepo(req.repo) && req.commit === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['commit'],
        message: 'a local repository needs the commit to check out (the CLI pins it when it reads the repository)',
      });
    }
    if (req.commit !== undefined && (req.repo === undefined || !isLocalRepo(req.repo))) {
      ctx.addIssue({ code: 'custom', path: ['commit'], message: 'only a local repository carries a pinned commit' });
    }
  });

/** Formats zod issues as "field: problem" lines. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/**
 * What is wrong with a job request once its profile's backend is known, or undefined. The CLI checks
 * the same rules flag by flag; the workflow checks a request from any other client with this.
 */
export function jobRequestProblem(request: unknown, backend: BackendKind): string | undefined {
  const parsed = jobRequestSchema.safeParse(request);
  if (!parsed.success) return describeIssues(parsed.error);
  const { repo } = parsed.data;
  if (repo !== undefined && backend !== 'local') {
    const problem = repoUrlProblem(repo, {});
    if (problem) return `repo: ${problem}`;
  }
  return undefined;
}

/** A workspace's size: whole GiB as `20G`, `20GiB` or `20`, or TiB as `1T`; up to 16 TiB. */
export const workspaceSizeSchema = z.string().transform((text, ctx) => {
  const match = /^(\d{1,5})\s*(?:(G|GB|GiB)|(T|TB|TiB))?$/i.exec(text.trim());
  const gib = match ? Number(match[1]) * (match[3] ? 1024 : 1) : NaN;
  if (!(gib >= 1 && gib <= 16 * 1024)) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a size: expected whole GiB from 1G to 16T, e.g. 20G` });
    return z.NEVER;
  }
  return gib;
});
