// The one-time bootstrap a guest boots with (`bootstrap.json`, read by guest/agent-runner.js). The configure
// activity mints it once per call and keeps only the token's hash (activity results are workflow history);
// a backend only writes it where its guest finds it. The guest API hashes a presented token the same way.
import { createHash, randomBytes } from 'node:crypto';

export interface Bootstrap {
  controllerUrl: string;
  jobId: string;
  vmid: number;
  /** One use, within provisioning.bootstrapTokenTtl: the guest trades it for its job (claimBootstrap). */
  token: string;
  /** Where the persistent workspace is, as the guest sees it, when the sandbox has one. */
  workspace?: string;
  /** The sandbox's copy of a repository on the host (local backend only). */
  localRepo?: string;
  /** A git server on the sandbox's own loopback is allowed (the local backend: development and tests). */
  allowLoopbackHttp?: boolean;
}

/** A fresh token for this VM's guest; the backend adds where the guest finds its workspace or repository. */
export function mintBootstrap(job: { controllerUrl: string; jobId: string }, vmid: number): Bootstrap {
  return { controllerUrl: job.controllerUrl, jobId: job.jobId, vmid, token: randomBytes(32).toString('hex') };
}

/** The form a secret of the guest's (the bootstrap token, the runner credential) takes in history: sha256, hex. */
export const secretHash = (secret: string): string => createHash('sha256').update(secret).digest('hex');
