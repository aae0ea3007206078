// What the configure activity hands a backend (a freshly minted bootstrap), for tests that drive a backend directly.
import { mintBootstrap } from '../../common/bootstrap';
import type { GuestBoot } from '../../backends/contract';

export function guestBoot(
  vmid: number,
  job: { jobId: string; controllerUrl: string; localRepo?: GuestBoot['localRepo'] },
): GuestBoot {
  return { bootstrap: mintBootstrap(job, vmid), localRepo: job.localRepo };
}
