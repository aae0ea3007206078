// The backends a worker runs (`worker.backends`), built from its config and prepared on this host. The kinds
// themselves are common/contract.ts's BACKEND_KINDS: workflows name them too, and may import no Node module.
import type { AgentlabConfig } from '../common/config';
import { BACKEND_KINDS, type BackendKind } from '../common/contract';
import type { Backends } from './contract';
import { LocalBackend } from './local/backend';
import { LocalNetwork } from './local/network';
import { createProxmoxBackend } from './proxmox/create';
import { QemuBackend } from './qemu/backend';

export { BACKEND_KINDS, type BackendKind, type Backends };

export interface CreatedBackends {
  backends: Backends;
  /** The sandboxes' resolver on the agent bridge (the gateway), when they get DNS: the worker serves it. */
  nameserver?: string;
  /** What the qemu backend found on this host, for the worker's log. */
  qemu?: Awaited<ReturnType<QemuBackend['prepareHost']>>;
}

/** Every backend `worker.backends` names, its host prepared (bridge, ruleset, guest image) before it is returned. */
export async function createBackends(config: AgentlabConfig): Promise<CreatedBackends> {
  const created: CreatedBackends = { backends: {} };
  const { local } = config;
  const wants = (kind: BackendKind) => config.worker.backends.includes(kind);
  const isolated = local.isolation === 'namespaces';
  // One bridge and ruleset for isolated local sandboxes and QEMU VMs alike.
  const network =
    (wants('local') && isolated) || wants('qemu')
      ? new LocalNetwork(
          { bridge: local.bridge, subnet: local.subnet, guestApiPort: config.guestApi.port, uplink: local.uplink },
          config.vmidRange,
        )
      : undefined;
  const nameserver = network && local.dnsUpstreams ? local.gateway : undefined;
  created.nameserver = nameserver;
  if (wants('local')) {
    const localBackend = new LocalBackend({
      dataDir: config.dataDir,
      vmidRange: config.vmidRange,
      cloneDelayMs: local.cloneDelayMs,
      bootDelayMs: local.bootDelayMs,
      isolation: local.isolation,
      network: isolated ? network : undefined,
      nameserver: isolated ? nameserver : undefined,
      maskPaths: local.maskPaths,
      agentsDir: config.agents.dir,
    });
    // The guest API listens on the bridge's gateway: the bridge must exist first.
    await localBackend.prepareHost();
    created.backends.local = localBackend;
  }
  if (wants('qemu')) {
    const qemuBackend = new QemuBackend({
      dataDir: config.dataDir,
      vmidRange: config.vmidRange,
      network: network!,
      nameserver,
      imageDir: config.qemu.imageDir,
      accelerator: config.qemu.accelerator,
    });
    created.qemu = await qemuBackend.prepareHost();
    created.backends.qemu = qemuBackend;
  }
  if (wants('proxmox')) created.backends.proxmox = createProxmoxBackend(config);
  return created;
}
