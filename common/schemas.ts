// zod schemas for everything that crosses a boundary: job requests, repo URLs, durations.
import { z } from 'zod';
import { parseDuration } from './duration';

/**
 * Git URLs we hand to `git clone`. Remote protocols only, plus local paths and file:// which only the
 * local backend accepts (checked again by the guest runner). Never `ext::` or an option-looking string.
 */
export function repoUrlProblem(repo: string): string | undefined {
  if (repo.length === 0) return 'must not be empty';
  if (repo.startsWith('-')) return `"${repo}" looks like a command-line option, not a git URL`;
  if (/^[a-z][a-z0-9+.-]*::/i.test(repo)) return `"${repo}" uses a git remote helper ("::"), which is not allowed`;
  if (/\s/.test(repo)) return `"${repo}" contains whitespace`;
  if (/^(https|ssh|git):\/\/[^/\s]+\/.+/i.test(repo)) return undefined;
  if (/^file:\/\/\/.+/i.test(repo)) return undefined;
  // Plain http only to this host (a development git server); the guest runner allows it on the local backend only.
  if (/^http:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)(:\d{1,5})?\/.+/i.test(repo)) return undefined;
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*/.test(repo) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\/.+/.test(repo)) {
    return undefined; // scp-like user@host:path
  }
  if (repo.startsWith('/')) return undefined;
  return `"${repo}" is not a git URL: expected https://, ssh://, git://, user@host:path, file://, an absolute path or http:// to a loopback address`;
}

export const isLocalRepo = (repo: string): boolean =>
  repo.startsWith('/') || /^file:\/\//i.test(repo) || /^http:\/\//i.test(repo);

export const repoUrlSchema = z.string().superRefine((repo, ctx) => {
  const problem = repoUrlProblem(repo);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A git ref: no option-looking values, no whitespace or control characters. */
export const gitRefSchema = z
  .string()
  .min(1)
  .max(250)
  .regex(/^[^-\s\p{Cc}~^:?*[\\][^\s\p{Cc}~^:?*[\\]*$/u, 'expected a branch, tag or commit (no spaces, no leading "-")');

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
    task: z.string().min(1, 'must not be empty').max(100_000).optional(),
    profile: z.string().min(1),
    ttlMs: z.number().int().positive().optional(),
    keepalive: z.boolean().optional(),
    agentCommand: z.string().min(1).max(4096).optional(),
    node: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/)
      .optional(),
  })
  .strict()
  .superRefine((req, ctx) => {
    if ((req.repo === undefined) !== (req.task === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['task'], message: 'a job needs both a repo and a task' });
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
