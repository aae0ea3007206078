// How a VM is marked as ours: the `agentlab` tag, an owner tag, and the exact owner in the description.
import { createHash } from 'node:crypto';
import type { Owner } from '../../common/contract';

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

export function ownerDescription(owner: Owner, attempt: number): string {
  const mark: OwnerMark = { jobId: owner.jobId, workflowId: owner.workflowId, attempt };
  return `${DESCRIPTION_PREFIX}${JSON.stringify(mark)}\nCreated by agentlab; destroyed when its job ends.`;
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
 * Ours for this owner: the description names exactly this workflow. The clone call itself writes the
 * description, so it is there from the VM's first complete config; the tags come from a later PUT that
 * may not have happened yet (an activity that failed in between), and are only the listing index.
 */
export function isOwnedBy(config: { tags?: unknown; description?: unknown }, owner: Owner): boolean {
  return parseOwner(config.description)?.workflowId === owner.workflowId;
}
