// The one-time bootstrap a guest boots with (`bootstrap.json`, typed GuestBootstrap in the contract, read by guest/). The configure
// activity mints it once per call and keeps only the token's hash (activity results are workflow history);
// a backend only writes it where its guest finds it. The guest API hashes a presented token the same way.
import { createHash, randomBytes } from 'node:crypto';
import type { GuestBootstrap } from './contract';

/** A fresh token for this VM's guest; the backend adds where the guest finds its workspace or repository. */
export function mintBootstrap(job: { controllerUrl: string; jobId: string }, vmid: number): GuestBootstrap {
  return { controllerUrl: job.controllerUrl, jobId: job.jobId, vmid, token: randomBytes(32).toString('hex') };
}

/** The form a secret of the guest's (the bootstrap token, the runner credential) takes in history: sha256, hex. */
export const secretHash = (secret: string): string => createHash('sha256').update(secret).digest('hex');
