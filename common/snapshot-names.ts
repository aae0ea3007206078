// The one snapshot-name rule: Proxmox's own (pve-snapshot-name), plus the name agentlab keeps for itself.
// Workflow code imports it, so it stays free of Node modules.

/** The snapshot taken right after first boot; `revert` rolls the sandbox back to it. */
export const CLEAN_SNAPSHOT = 'clean';

/** pve-common's pve-configid (`[a-z][a-z0-9_-]+`, case-insensitive: two characters at least) and maxLength 40. */
const CONFIG_ID = /^[a-z][a-z0-9_-]+$/i;
const MAX_LENGTH = 40;

/**
 * Why Proxmox would refuse `name` for a snapshot, or undefined. qemu-server's snapshot call also refuses
 * `current` (exactly) and `pending` (in any case); the local backend keeps the same rule, so a name works on both.
 */
export function snapshotNameProblem(name: string): string | undefined {
  if (!CONFIG_ID.test(name) || name.length > MAX_LENGTH) {
    return `snapshot name "${name}": expected a letter, then letters, digits, "_" or "-" (2 to ${MAX_LENGTH} characters)`;
  }
  if (name === 'current' || name.toLowerCase() === 'pending') {
    return `snapshot name "${name}" is reserved by Proxmox`;
  }
  return undefined;
}

/** The same for a snapshot a user saves: `clean` is revert's. */
export function userSnapshotNameProblem(name: string): string | undefined {
  if (name === CLEAN_SNAPSHOT) return `snapshot name "${name}" is reserved (revert rolls back to it)`;
  return snapshotNameProblem(name);
}
