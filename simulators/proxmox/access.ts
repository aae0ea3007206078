// What every route module shares: the route shape, VM lookup on the node that owns the config, locks and tasks.
import { AGENT_FORMAT, parsePropertyString } from '../../common/property-string';
import { configMissing, configNotFound, flockTimeout, SimHttpError } from './errors';
import type { SimState, SimVm } from './state';
import type { TaskContext } from './tasks';

export interface RouteContext {
  params: Record<string, string>;
  /** `{node}` of the path (already checked to be a cluster member). */
  node: string;
  vmid: number;
  /** The UPID user: `user@realm!token`. */
  user: string;
}
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Exactly as in the schema, so parameters are validated against it. */
  path: string;
  handler: (ctx: RouteContext) => unknown;
}

/** Power events, for whoever plays the guest (server.ts runs the real guest runner on them). */
export interface PowerHooks {
  onStart?: (vmid: number, vm: SimVm) => void;
  onStop?: (vmid: number) => void;
  onDestroy?: (vmid: number) => void;
}

/** A reply with envelope keys beside `data`: the task list's and task log's `total`. */
export class Envelope {
  constructor(
    readonly data: unknown,
    readonly extra: Record<string, unknown>,
  ) {}
}

export class Access {
  constructor(readonly state: SimState) {}

  /** load_config on `node`: a VM whose config lives on another node does not exist here. */
  vm(node: string, vmid: number, message = configMissing(node, vmid)): SimVm {
    const vm = this.state.vms.get(vmid);
    if (!vm || vm.node !== node) throw new SimHttpError(500, message);
    return vm;
  }

  /** check_running's assert_config_exists_on_node: the other face of a missing VM (clone, reboot, reset, …). */
  vmForCheckRunning(node: string, vmid: number): SimVm {
    return this.vm(node, vmid, configNotFound(node, vmid));
  }

  /** Inside a task the same lookups fail the task instead of the request. */
  vmInTask(node: string, vmid: number, message = configMissing(node, vmid)): SimVm {
    const vm = this.state.vms.get(vmid);
    if (!vm || vm.node !== node) throw new Error(message);
    return vm;
  }

  /** check_lock before a task: a synchronous 500. */
  checkLockSync(vm: SimVm): void {
    if (vm.config.lock) throw new SimHttpError(500, `VM is locked (${vm.config.lock})`);
  }

  /** check_lock inside a task: the task's exitstatus. */
  checkLock(vm: SimVm): void {
    if (vm.config.lock) throw new Error(`VM is locked (${vm.config.lock})`);
  }

  /** lock_config: the VM's config flock, with its 10 s wait. */
  underConfigFlock<T>(vmid: number, work: () => Promise<T>): Promise<T> {
    return this.state.flocks.with(`vm-${vmid}`, this.state.latency.configFlockWaitMs, flockTimeout(vmid), work);
  }

  task(node: string, type: string, id: string | number, user: string, worker: (ctx: TaskContext) => Promise<void>) {
    const { slowTaskRate = 0, slowTaskMs = 0 } = this.state.faults;
    const slow = Math.random() < slowTaskRate;
    if (slow) this.state.stats.injectedFaults++;
    return this.state.tasks.start(node, type, id, user, async (ctx) => {
      if (slow) await ctx.sleep(slowTaskMs);
      await worker(ctx);
    });
  }
}

/** qemu-server get_qga_key($conf, 'enabled'): the keyed `enabled`, wherever it stands in the string. */
export function agentEnabled(vm: SimVm): boolean {
  return parsePropertyString(String(vm.config.agent ?? '0'), AGENT_FORMAT, { lenient: true }).enabled === '1';
}
