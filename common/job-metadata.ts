// What the Temporal Web UI shows of a job (user metadata): its fixed summary and details, set when it starts,
// and the current details the workflow keeps up to date. Plain text and Temporal markdown; no Node imports,
// since the workflow renders the current details itself.
import type { JobDescription, JobRequest } from './contract';
import { formatDuration } from './duration';

/** The task's first non-empty line, cut to fit one line of the UI's list. */
export function taskFirstLine(task: string, max = 80): string {
  const line = task.split('\n').find((l) => l.trim() !== '') ?? '';
  const trimmed = line.trim();
  return trimmed.length > max ? `${trimmed.slice(0, max - 1)}…` : trimmed;
}

/** `14:05 UTC`, with the date in front when it is not `now`'s day (a lease may run past midnight). */
export function utcMinute(ms: number, now: number): string {
  const iso = new Date(ms).toISOString();
  const sameDay = iso.slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return `${sameDay ? '' : `${iso.slice(0, 10)} `}${iso.slice(11, 16)} UTC`;
}

/** Fixed at start (`staticSummary`, `staticDetails`): what the job is. */
export function jobStaticMetadata(request: JobRequest): { staticSummary: string; staticDetails: string } {
  const where = request.repo ? `${request.repo}@${request.ref ?? 'HEAD'}` : undefined;
  const staticSummary = request.task
    ? `${taskFirstLine(request.task)} · ${where} · profile ${request.profile}`
    : `sandbox without a job · profile ${request.profile}`;
  const lines = [
    ...(request.repo ? [`- repo: ${request.repo}`] : []),
    ...(request.repo ? [`- ref: ${request.ref ?? 'HEAD'}${request.commit ? ` (commit ${request.commit})` : ''}`] : []),
    ...(request.task ? [`- task: ${taskFirstLine(request.task, 200)}`] : []),
    `- profile: ${request.profile}`,
    ...(request.node ? [`- node: ${request.node}`] : []),
    ...(request.ttlMs !== undefined ? [`- ttl: ${formatDuration(request.ttlMs)}`] : []),
    ...(request.keepalive ? ['- keepalive: the sandbox outlives its job'] : []),
  ];
  return { staticSummary, staticDetails: lines.join('\n') };
}

/** The workflow's current details: where the sandbox is now, kept up to date on every change. */
export function currentDetails(d: JobDescription, now: number): string {
  const lines = [`- state: **${d.state}**${d.hasJob ? `, job ${d.jobStatus}` : ''}`];
  if (d.vmid !== undefined) {
    const on = d.node ? ` on ${d.node}` : '';
    lines.push(`- VMID: ${d.vmid}${on}${d.address ? `, address ${d.address}` : ''}`);
  }
  if (d.leaseExpiresAt !== undefined && d.state !== 'DESTROYED') {
    lines.push(`- lease until ${utcMinute(d.leaseExpiresAt, now)}`);
  }
  if (d.message !== undefined) {
    const exit = d.exitCode !== undefined && d.exitCode !== null ? `, exit ${d.exitCode}` : '';
    lines.push(`- outcome: ${d.jobStatus}${exit}: ${d.message}`);
  }
  const refused = d.timeline.filter((t) => t.signal).at(-1);
  if (refused) lines.push(`- last refused signal (${utcMinute(refused.at, now)}): ${refused.note}`);
  return lines.join('\n');
}
