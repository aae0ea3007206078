// When a person may get into a sandbox (`sandbox shell`, `sandbox ssh`): the one rule the workflow's
// validator and the CLI's --dry-run both read. Workflow code imports this module: no Node imports.
import { ACCESS_KINDS, type AccessKind, type AccessRequest, type BackendKind } from './contract';
import { operationRejection, type SandboxState } from './states';

/** The backend each way in works on: a local sandbox has no sshd, a Proxmox VM has no namespaces on this host. */
const BACKEND_OF: Record<AccessKind, BackendKind> = { shell: 'local', ssh: 'proxmox' };

export interface AccessedSandbox {
  jobId: string;
  state: SandboxState;
  backend?: BackendKind;
  node?: string;
}

/** undefined when the person may get in; else why not, naming the state, the backend or the host. */
export function accessRejection(sandbox: AccessedSandbox, request: AccessRequest): string | undefined {
  // A client other than agentlab's CLI may send anything: the timeline records only well-formed requests.
  if (!ACCESS_KINDS.includes(request.kind)) {
    return `kind: expected one of ${ACCESS_KINDS.join(', ')}, got ${JSON.stringify(request.kind)}`;
  }
  for (const field of ['user', 'host', 'node'] as const) {
    if (typeof request[field] !== 'string' || request[field] === '') return `${field}: expected a non-empty string`;
  }
  const stateRejection = operationRejection(sandbox.state, request.kind);
  if (stateRejection) return stateRejection;
  if (sandbox.backend === 'qemu') {
    // The guest image has no SSH server, and a VM has no namespaces on its host to enter.
    return `sandbox of job ${sandbox.jobId} runs on the qemu backend, which has no \`sandbox ${request.kind}\` yet`;
  }
  if (sandbox.backend && sandbox.backend !== BACKEND_OF[request.kind]) {
    return request.kind === 'shell'
      ? `sandbox of job ${sandbox.jobId} runs on the ${sandbox.backend} backend: \`sandbox shell\` enters local sandboxes only; use \`agentlab sandbox ssh ${sandbox.jobId}\``
      : `sandbox of job ${sandbox.jobId} runs on the local backend, which has no sshd: use \`agentlab sandbox shell ${sandbox.jobId}\` on its host ${sandbox.node ?? ''}`.trimEnd();
  }
  if (request.kind === 'shell' && sandbox.node !== undefined && sandbox.node !== request.node) {
    return `sandbox of job ${sandbox.jobId} runs on node ${sandbox.node}: \`sandbox shell\` enters its namespaces from that host only (this CLI is on node ${request.node})`;
  }
  return undefined;
}

/** The timeline's note for an access. */
export const accessNote = (request: AccessRequest): string => `${request.kind} by ${request.user}@${request.host}`;
