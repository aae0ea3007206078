// How a job is shown: the `--json` document (cli/json-schemas.ts jobDocumentSchema), the fields of `job show`,
// and the exit code a job's outcome maps to.
import type { JobDescription } from '../../../common/contract';
import { ExitCode } from '../../errors';
import type { CliIo } from '../../io';
import { formatTime, printFields } from '../../output';

/** `placeInLine`: where the job waits for its host's capacity (1 = next), when it does. */
export function jobDocument(d: JobDescription, placeInLine?: number) {
  return {
    jobId: d.jobId,
    status: d.jobStatus,
    placeInLine: placeInLine ?? null,
    exitCode: d.exitCode ?? null,
    message: d.message ?? null,
    profile: d.profile,
    repo: d.repo ?? null,
    ref: d.ref ?? null,
    workspace: d.workspace?.name ?? null,
    sandbox: {
      vmid: d.vmid ?? null,
      state: d.state,
      node: d.node ?? null,
      address: d.address ?? null,
      leaseExpiresAt: formatTime(d.leaseExpiresAt) ?? null,
      keepalive: d.keepalive,
      cleanSnapshot: d.cleanSnapshot === true,
    },
    timeline: d.timeline.map((t) => ({
      state: t.state,
      at: formatTime(t.at),
      ...(t.note ? { note: t.note } : {}),
      ...(t.signal ? { signal: t.signal } : {}),
      ...(t.access ? { access: t.access } : {}),
    })),
  };
}

export function exitCodeFor(d: JobDescription): number {
  switch (d.jobStatus) {
    case 'COMPLETED':
      return ExitCode.ok;
    case 'TIMEOUT':
      return ExitCode.timedOut;
    default:
      return ExitCode.failed;
  }
}

export function printJob(io: CliIo, d: JobDescription, placeInLine?: number): void {
  printFields(io, [
    ['Job', d.jobId],
    ['Status', d.jobStatus],
    ['Place in line', placeInLine !== undefined ? `${placeInLine} (waiting for capacity on ${d.node})` : undefined],
    ['Exit code', d.exitCode ?? undefined],
    ['Message', d.message],
    ['Profile', d.profile],
    ['Repo', d.repo ? `${d.repo} @ ${d.ref ?? 'HEAD'}` : undefined],
    ['Workspace', d.workspace ? `${d.workspace.name}${d.workspace.held ? ' (attached)' : ''}` : undefined],
    ['Sandbox', d.vmid !== undefined ? `vmid ${d.vmid} on ${d.node ?? '?'}` : undefined],
    ['State', d.state],
    ['Address', d.address],
    ['Lease expires', formatTime(d.leaseExpiresAt)],
    ['Keepalive', d.keepalive ? 'yes' : 'no'],
  ]);
}
