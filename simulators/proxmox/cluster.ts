// Cluster-wide endpoints: version, the node list, cluster resources (VMs, nodes, storages), nextid and the
// cluster task list, with pve-manager's key sets (API2/Nodes.pm, API2/Cluster.pm, API2Tools.pm).
import type { Route, RouteContext } from './access';
import { paramError, SimHttpError } from './errors';
import { cpusOf, memoryBytes, uptimeOf, vmStatus } from './power';
import type { SimState } from './state';
import { taskEntry } from './task-routes';

const NODE_MAXCPU = 16;
const NODE_MAXMEM = 64 * 1024 ** 3;
const NODE_MAXDISK = 100 * 1024 ** 3;

export function createClusterRoutes(state: SimState, fingerprint: () => string | undefined): Route[] {
  const started = Date.now();

  /** extract_node_stats: every member online, with its usage counters. */
  const nodeStats = (node: string) => ({
    id: `node/${node}`,
    node,
    type: 'node',
    status: 'online',
    uptime: Math.floor((Date.now() - started) / 1000) + 86_400,
    cpu: 0.0421,
    mem: Math.floor(NODE_MAXMEM * 0.3),
    disk: Math.floor(NODE_MAXDISK * 0.2),
    level: '',
    maxcpu: NODE_MAXCPU,
    maxmem: NODE_MAXMEM,
    maxdisk: NODE_MAXDISK,
  });

  function nodes() {
    return state.nodes.map((node) => ({
      ...nodeStats(node),
      ...(fingerprint() ? { ssl_fingerprint: fingerprint() } : {}),
    }));
  }

  function resources({ params }: RouteContext) {
    const type = params.type;
    const out: Record<string, unknown>[] = [];
    if (type === undefined || type === 'vm') {
      for (const vm of [...state.vms.values()].sort((a, b) => a.vmid - b.vmid)) {
        // extract_vm_stats reads the RRD (name, status, template, counters); lock and tags come from the config.
        const s = vmStatus(vm, false);
        out.push({
          id: `qemu/${vm.vmid}`,
          vmid: vm.vmid,
          node: vm.node,
          type: 'qemu',
          status: vm.status,
          uptime: uptimeOf(vm),
          name: s.name,
          template: vm.config.template ? 1 : 0,
          maxcpu: cpusOf(vm),
          cpu: s.cpu,
          maxmem: memoryBytes(vm),
          mem: s.mem,
          maxdisk: s.maxdisk,
          disk: 0,
          netin: s.netin,
          netout: s.netout,
          diskread: vm.status === 'running' ? 52_428_800 : 0,
          diskwrite: vm.status === 'running' ? 10_485_760 : 0,
          ...(vm.config.lock ? { lock: vm.config.lock } : {}),
          ...(vm.config.tags !== undefined ? { tags: vm.config.tags } : {}),
        });
      }
    }
    if (type === undefined || type === 'node')
      out.push(...state.nodes.map((node) => ({ ...nodeStats(node), 'cgroup-mode': 2 })));
    if (type === undefined || type === 'storage') {
      for (const storage of state.storages) {
        for (const node of state.nodes) {
          out.push({
            id: `storage/${node}/${storage.id}`,
            storage: storage.id,
            node,
            type: 'storage',
            plugintype: storage.type,
            status: 'available',
            shared: storage.shared,
            content: storage.content.join(','),
            maxdisk: storage.maxdisk,
            disk: Math.floor(storage.maxdisk * 0.1),
          });
        }
      }
    }
    return out;
  }

  function nextid({ params }: RouteContext): string {
    if (params.vmid !== undefined) {
      if (state.vms.has(Number(params.vmid))) throw paramError({ vmid: `VM ${params.vmid} already exists` });
      return params.vmid;
    }
    // Lowest free id, reserving nothing: concurrent callers get the same answer, as on a real cluster.
    for (let id = 100; id < 1_000_000; id++) if (!state.vms.has(id)) return String(id);
    throw new SimHttpError(500, 'unable to get any free VMID in range [100, 1000000]');
  }

  return [
    {
      method: 'GET',
      path: '/version',
      handler: () => ({ version: '8.4.1', release: '8.4', repoid: '2a5fa54a8503f96d' }),
    },
    { method: 'GET', path: '/nodes', handler: nodes },
    { method: 'GET', path: '/cluster/resources', handler: resources },
    { method: 'GET', path: '/cluster/nextid', handler: nextid },
    // get_tasklist: what each node's pvestatd broadcast of its recent tasks, newest first, tokens split.
    {
      method: 'GET',
      path: '/cluster/tasks',
      handler: () =>
        state.tasks
          .list()
          .reverse()
          .slice(0, 50 * state.nodes.length)
          .map((t) => taskEntry(t)),
    },
  ];
}
