// A job's side of a persistent workspace: it asks the workspace's workflow for the attachment before any VM
// exists, tells it which VM it attached to, and lets go once that VM is destroyed.
import {
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import {
  releaseWorkspaceSignal,
  requestWorkspaceSignal,
  workspaceAttachedSignal,
  workspaceGrantedSignal,
  workspaceRefusedSignal,
  workspaceWorkflowId,
  type WorkspaceRef,
} from '../common/workspace';

export class WorkspaceClaim {
  /** Set by the grant; a continued run carries it over. */
  private granted?: WorkspaceRef;
  private refusal?: string;
  /** The request left: from then on a release must follow, whatever happens. */
  private asked: boolean;

  constructor(
    private readonly holder: string,
    private readonly jobId: string,
    private readonly name: string | undefined,
    carried?: WorkspaceRef,
  ) {
    this.granted = carried;
    this.asked = carried !== undefined;
    if (name === undefined) return; // no handlers on jobs without a workspace: their histories stay as they were
    setHandler(workspaceGrantedSignal, (ref) => {
      if (ref.name === this.name) this.granted = ref;
    });
    setHandler(workspaceRefusedSignal, ({ name: refused, reason }) => {
      if (refused === this.name) this.refusal = reason;
    });
  }

  get ref(): WorkspaceRef | undefined {
    return this.granted;
  }

  /** Waits for the workspace (unless `wait` is false and someone holds it: then it fails, naming the holder). */
  async acquire(wait: boolean): Promise<WorkspaceRef> {
    const name = this.name!;
    try {
      this.asked = true;
      await getExternalWorkflowHandle(workspaceWorkflowId(name)).signal(requestWorkspaceSignal, {
        holder: this.holder,
        jobId: this.jobId,
        wait,
      });
    } catch {
      this.asked = false;
      throw ApplicationFailure.nonRetryable(
        `workspace ${name} does not exist (agentlab workspace list)`,
        'InvalidRequest',
      );
    }
    if (!this.granted && this.refusal === undefined) {
      setCurrentDetails(`Waiting for workspace ${name}: see \`agentlab workspace show ${name}\``);
    }
    await condition(() => this.granted !== undefined || this.refusal !== undefined);
    setCurrentDetails('');
    if (!this.granted) throw ApplicationFailure.nonRetryable(this.refusal!, 'WorkspaceUnavailable');
    return this.granted;
  }

  /** Recorded in the workspace's history: which VM held it. */
  async attached(vmid: number): Promise<void> {
    const workspace = getExternalWorkflowHandle(workspaceWorkflowId(this.name!));
    await this.tell(() => workspace.signal(workspaceAttachedSignal, { holder: this.holder, vmid }));
  }

  /** Gives the workspace back (or leaves the line); only once nothing of this job's VMs can touch it. */
  async release(): Promise<void> {
    if (!this.asked) return;
    const workspace = getExternalWorkflowHandle(workspaceWorkflowId(this.name!));
    await this.tell(() => workspace.signal(releaseWorkspaceSignal, { holder: this.holder }));
    this.asked = false;
  }

  private async tell(send: () => Promise<void>): Promise<void> {
    try {
      await send();
    } catch (err) {
      // No workspace workflow: nothing is held.
      log.warn('could not reach the workspace workflow', { workspace: this.name, reason: (err as Error).message });
    }
  }
}
