// Plain-language summaries on every activity the job workflow schedules: the Web UI shows them on the
// event history and timeline, so an operator reads "clone VM 7003 from template 9000" instead of "cloneVm".
import type { ActivityInterfaceFor } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { formatDuration } from '../common/duration';

type Summaries = { [K in keyof Activities]: (input: Parameters<Activities[K]>[0]) => string };

const SUMMARIES: Summaries = {
  resolveProfile: ({ name, node }) => `resolve profile ${name}${node ? ` on node ${node}` : ''}`,
  allocateVmid: ({ backend, attempt }) => `allocate a VMID (${backend}, attempt ${attempt})`,
  cloneVm: ({ vmid, profile }) =>
    profile.templateVmid !== undefined
      ? `clone VM ${vmid} from template ${profile.templateVmid}`
      : `create ${profile.backend} sandbox ${vmid}`,
  configureVm: ({ vmid, profile }) => {
    const grown = profile.backend === 'proxmox' && profile.diskGb !== undefined;
    return `configure VM ${vmid}: ${grown ? `boot disk to ${profile.diskGb}G, ` : ''}bootstrap token and cloud-init`;
  },
  startVm: ({ vmid }) => `start VM ${vmid}`,
  waitForGuestAddress: ({ vmid, timeoutMs }) => `wait up to ${formatDuration(timeoutMs)} for VM ${vmid}'s address`,
  stopVm: ({ vmid }) => `stop VM ${vmid}`,
  deleteBootstrapSnippet: ({ vmid }) => `delete VM ${vmid}'s bootstrap snippet`,
  awaitGuestSilence: ({ silenceMs }) =>
    `watch the guest runner: fail the job after ${formatDuration(silenceMs)} unheard`,
  snapshotVm: ({ vmid, name }) => `snapshot VM ${vmid} as ${name}`,
  rollbackVm: ({ vmid, name }) => `roll VM ${vmid} back to snapshot ${name}`,
  reconcileOrphans: ({ backend }) => `destroy orphaned ${backend} VMs`,
  destroyVm: ({ vmid }) => `destroy VM ${vmid}`,
  createWorkspace: ({ workspace }) => `create workspace ${workspace.name} (${workspace.sizeGb} GiB)`,
  deleteWorkspace: ({ workspace }) => `delete workspace ${workspace.name}'s storage`,
  attachWorkspace: ({ vmid, workspace }) => `attach workspace ${workspace.name} to VM ${vmid}`,
  detachWorkspace: ({ vmid, workspace }) => `detach workspace ${workspace.name} from VM ${vmid}`,
};

/** The summary an activity call carries. */
export function activitySummary<K extends keyof Activities>(name: K, input: Parameters<Activities[K]>[0]): string {
  return (SUMMARIES[name] as (input: Parameters<Activities[K]>[0]) => string)(input);
}

/**
 * The same activities, each call carrying its summary (`executeWithOptions` merges it into the proxy's
 * options). User metadata is not part of the command's identity, so histories without it replay unchanged.
 */
export function withSummaries(proxy: ActivityInterfaceFor<Activities>): Activities {
  const summarized: Partial<Record<keyof Activities, unknown>> = {};
  for (const name of Object.keys(SUMMARIES) as (keyof Activities)[]) {
    const summary = SUMMARIES[name] as (input: unknown) => string;
    summarized[name] = (input: unknown) =>
      proxy[name].executeWithOptions({ summary: summary(input) }, [input as never]);
  }
  return summarized as Activities;
}
