// A job's side of admission: it waits in its host's line for a slot the size of its sandbox before any VM
// exists, and gives the slot back once its sandbox is gone.
import {
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type { AdmissionActivities } from '../activities/admission';
import { admissionWorkflowId, releaseSlotSignal, slotGrantedSignal } from '../common/admission';
import { hostTaskQueue, PERMANENT_ERROR_TYPES, type ResolvedProfile } from '../common/contract';

export class AdmissionTicket {
  private granted: boolean;
  /** The node whose line this job joined; set before the request leaves, so that a release always follows. */
  private node?: string;

  /** `carried`: a continued run's slot, granted to an earlier run of the same workflow. */
  constructor(
    private readonly holder: string,
    carried?: { node: string },
  ) {
    this.node = carried?.node;
    this.granted = carried !== undefined;
    setHandler(slotGrantedSignal, () => {
      this.granted = true;
    });
  }

  /** Joins the profile's node's line and waits for a slot; returns when it was granted. */
  async acquire(profile: ResolvedProfile): Promise<number> {
    const node = profile.node;
    this.node = node;
    const host = proxyActivities<AdmissionActivities>({
      taskQueue: hostTaskQueue(node),
      startToCloseTimeout: '30s',
      retry: { maximumInterval: '30s', nonRetryableErrorTypes: PERMANENT_ERROR_TYPES },
    });
    await host.requestAdmission({ holder: this.holder, cores: profile.cores, memoryMb: profile.memoryMb });
    if (!this.granted) {
      setCurrentDetails(
        `Waiting for capacity on node ${node}: the line is the \`line\` query of workflow ${admissionWorkflowId(node)}`,
      );
    }
    await condition(() => this.granted);
    setCurrentDetails('');
    return Date.now();
  }

  /** Gives the slot back, or leaves the line; a no-op for a job that never asked. */
  async release(): Promise<void> {
    if (this.node === undefined) return;
    try {
      await getExternalWorkflowHandle(admissionWorkflowId(this.node)).signal(releaseSlotSignal, {
        holder: this.holder,
      });
    } catch (err) {
      // No admission workflow to tell: there is no line either, so nothing is held.
      log.warn('could not release the admission slot', { node: this.node, reason: (err as Error).message });
    }
  }

  /** What a continued run needs to keep the slot (and release it in the end). */
  handOver(): { node: string } | undefined {
    return this.node === undefined ? undefined : { node: this.node };
  }
}
