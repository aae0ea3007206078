// How a VM is marked as ours: the `agentlab` tag, an owner tag, and the exact owner in the description.
import { createHash } from 'node:crypto';
import type { Owner } from '../../common/contract';
import { credentialsIn } from '../../guest/git-input';
import type { FoundVm } from '../ownership';

export const AGENTLAB_TAG = 'agentlab';
const DESCRIPTION_PREFIX = 'agentlab-owner: ';

export interface OwnerMark extends Owner {
  attempt: number;
}

/** Tags allow only [a-z0-9_-] here; a hash keeps any workflow id short and collision-resistant. */
export function ownerTag(workflowId: string): string {
  return `agentlab-${createHash('sha256').update(workflowId).digest('hex').slice(0, 16)}`;
}

export const tagsOf = (tags: unknown): string[] =>
  String(tags ?? '')
    .split(/[;, ]/)
    .filter(Boolean);

/** What the description tells a person reading the VM in Proxmox's UI, below the mark; never a secret. */
export interface VmLabel {
  profile: string;
  /** The job's repository, as its request names it (the request refuses credentials in it). */
  repo?: string;
  /** The job's workflow in the Temporal Web UI. */
  webUiUrl?: string;
}

/** The owner mark on its own line (parseOwner reads only that line), then the job in words for people. */
export function ownerDescription(owner: Owner, attempt: number, label?: VmLabel): string {
  const mark: OwnerMark = { jobId: owner.jobId, workflowId: owner.workflowId, attempt };
  const lines = [`${DESCRIPTION_PREFIX}${JSON.stringify(mark)}`, 'Created by agentlab; destroyed when its job ends.'];
  if (label) {
    lines.push(`job: ${owner.jobId}`, `profile: ${label.profile}`);
    if (label.repo) lines.push(`repo: ${credentialsIn(label.repo) ?? label.repo}`);
    if (label.webUiUrl) lines.push(`Temporal Web UI: ${label.webUiUrl}`);
  }
  return lines.join('\n');
}

/**
 * `agentlab-<jobId>` as a Proxmox VM name (format dns-name): letters, digits and inner "-" only, at most
 * 63 characters. Only for people: ownership is the description's mark and the tags, never the name.
 */
export function vmName(jobId: string): string {
  return `agentlab-${jobId}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 63)
    .replace(/-+$/, '');
}

export function parseOwner(description: unknown): OwnerMark | undefined {
  const line = String(description ?? '')
    .split('\n')
    .find((l) => l.startsWith(DESCRIPTION_PREFIX));
  if (!line) return undefined;
  try {
    const mark = JSON.parse(line.slice(DESCRIPTION_PREFIX.length)) as OwnerMark;
    return typeof mark.workflowId === 'string' && typeof mark.jobId === 'string' ? mark : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What ownership.ts judges of a VM's config: the owner mark in its description. The clone call itself writes
 * the description, so the mark is there from the VM's first complete config; the tags come from a later PUT
 * that may not have happened yet (an activity that failed in between), and are only the listing index.
 */
export function foundVm(config: { description?: unknown } | undefined): FoundVm {
  return { exists: config !== undefined, markedBy: parseOwner(config?.description)?.workflowId };
}
