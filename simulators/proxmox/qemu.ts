// The simulated endpoints, with PVE 8.4's sync-versus-task error split (data/error-catalog.json).
import { configMissing, configNotFound, flockTimeout, paramError, SimHttpError, storageLockTimeout } from './errors';
import { createSnapshotRoutes } from './snapshots';
import { SimState, typedConfig, type SimVm } from './state';

export interface RouteContext {
  params: Record<string, string>;
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isCloudInitDrive = (value: unknown) => typeof value === 'string' && /cloudinit/.test(value);
const DISK_KEY = /^(scsi|virtio|sata|ide)\d+$/;

/** Power events, for whoever plays the guest (server.ts runs the real guest runner on them). */
export interface PowerHooks {
  onStart?: (vmid: number, vm: SimVm) => void;
  onStop?: (vmid: number) => void;
  onDestroy?: (vmid: number) => void;
}

export function createRoutes(state: SimState, hooks: PowerHooks = {}): Route[] {
  const node = state.node;
  const wait = (ms: number) => sleep(ms);

  function requireVm(vmid: number, message = configMissing(node, vmid)): SimVm {
    const vm = state.vms.get(vmid);
    if (!vm) throw new SimHttpError(500, message);
    return vm;
  }
  function checkLock(vm: SimVm): void {
    if (vm.config.lock) throw new Error(`VM is locked (${vm.config.lock})`);
  }
  function agentEnabled(vm: SimVm): boolean {
    return /^(enabled=)?1/.test(String(vm.config.agent ?? '0'));
  }
  const resource = (vm: SimVm) => ({
    id: `qemu/${vm.vmid}`,
    type: 'qemu',
    vmid: vm.vmid,
    name: vm.config.name,
    node,
    status: vm.status,
    template: vm.config.template ? 1 : 0,
    ...(vm.config.tags ? { tags: vm.config.tags } : {}),
    ...(vm.config.lock ? { lock: vm.config.lock } : {}),
    maxcpu: Number(vm.config.cores ?? 1),
    maxmem: Number(String(vm.config.memory ?? '512').replace('current=', '')) * 1024 * 1024,
    uptime: vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
  });

  async function clone({ params, vmid, user }: RouteContext): Promise<string> {
    const source = requireVm(vmid, configNotFound(node, vmid));
    const newid = Number(params.newid);
    checkLockSync(source);
    const isTemplate = !!source.config.template;
    const full = params.full === undefined ? !isTemplate : params.full === '1';
    if (!full && (params.storage || params.format)) {
      throw new SimHttpError(500, `parameter '${params.storage ? 'storage' : 'format'}' not allowed for linked clones`);
    }
    if (!full) {
      const [key, volume] = Object.entries(source.config).find(
        ([k, v]) => DISK_KEY.test(k) && !isCloudInitDrive(v),
      ) ?? ['scsi0', ''];
      const volid = String(volume).split(',')[0]!;
      if (!isTemplate || !/^local-lvm:base-/.test(volid)) {
        throw new SimHttpError(500, `Linked clone feature is not supported for '${volid}' (${key})`);
      }
    }
    if (state.faults.stealCloneTargets > 0 && !state.vms.has(newid)) {
      state.faults.stealCloneTargets--;
      state.vms.set(newid, { vmid: newid, config: { name: `stolen-${newid}`, cores: 1 }, status: 'stopped' });
    }
    if (state.vms.has(newid)) throw new SimHttpError(500, `unable to create VM ${newid}: config file already exists`);

    return state.tasks.start('qmclone', vmid, user, async (log) => {
      // The target's flock (1 s wait) is the only thing that separates two callers that chose one newid.
      await state.flocks.with(`vm-${newid}`, state.latency.cloneFlockWaitMs, flockTimeout(newid), async () => {
        if (state.vms.has(newid)) throw new Error(`unable to create VM ${newid}: config file already exists`);
        state.vms.set(newid, { vmid: newid, config: { lock: 'clone' }, status: 'stopped' });
      });
      const storage = params.storage ?? 'local-lvm';
      try {
        if (Math.random() < state.faults.lockContention) {
          await wait(state.latency.linkedCloneMs);
          throw new Error(storageLockTimeout(storage));
        }
        const config: Record<string, string | number> = { lock: 'clone' };
        for (const [key, value] of Object.entries(source.config)) {
          // Snapshots live beside the config and are not copied; neither is the source's place among them.
          if (['template', 'lock', 'name', 'description', 'parent'].includes(key)) continue;
          if (/^net\d+$/.test(key))
            config[key] = String(value).replace(/=([0-9A-F]{2}:){5}[0-9A-F]{2}/i, `=${SimState.newMac()}`);
          else if (isCloudInitDrive(value)) config[key] = `${storage}:vm-${newid}-cloudinit,media=cdrom`;
          else if (DISK_KEY.test(key)) {
            const volid = String(value).split(',')[0]!;
            log(`create ${full ? 'full' : 'linked'} clone of drive ${key} (${volid})`);
            config[key] = full ? `${storage}:vm-${newid}-disk-0,size=8G` : `${volid}/vm-${newid}-disk-0,size=8G`;
          } else config[key] = value;
        }
        config.name = params.name ?? `Copy-of-VM-${source.config.name ?? vmid}`;
        if (params.description !== undefined) config.description = params.description;
        // The storage's flock is held while the volumes are copied: clones on one storage run one at a
        // time, and one queued longer than the lock wait fails with the catalog's text.
        await state.flocks
          .with(`storage-${storage}`, state.latency.storageLockWaitMs, storageLockTimeout(storage), () =>
            wait(full ? state.latency.fullCloneMs : state.latency.linkedCloneMs),
          )
          .catch((err: Error) => {
            if (err.message === storageLockTimeout(storage)) state.stats.storageLockTimeouts++;
            throw err;
          });
        const vm = state.vms.get(newid);
        if (vm) vm.config = Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'lock'));
      } catch (err) {
        state.vms.delete(newid); // PVE frees the new volumes and unlinks the config
        throw err;
      }
    });
  }
  function checkLockSync(vm: SimVm): void {
    if (vm.config.lock) throw new SimHttpError(500, `VM is locked (${vm.config.lock})`);
  }

  function getConfig({ vmid }: RouteContext) {
    const vm = requireVm(vmid);
    return { ...typedConfig(vm.config), digest: state.digest(vm) };
  }

  async function putConfig({ params, vmid }: RouteContext): Promise<null> {
    const vm = requireVm(vmid);
    const { digest, delete: remove, ...changes } = params;
    if (Object.keys(changes).length === 0 && !remove) throw new SimHttpError(500, 'no options specified');
    return state.flocks.with(`vm-${vmid}`, state.latency.configFlockWaitMs, flockTimeout(vmid), async () => {
      checkLockSync(vm);
      if (digest && digest !== state.digest(vm)) {
        throw new SimHttpError(500, 'checksum mismatch (file change by other user?)');
      }
      for (const key of (remove ?? '').split(/[,; ]/).filter(Boolean)) delete vm.config[key];
      Object.assign(vm.config, changes);
      return null;
    });
  }

  function statusCurrent({ vmid }: RouteContext) {
    const vm = requireVm(vmid);
    return {
      vmid,
      status: vm.status,
      qmpstatus: vm.status,
      name: vm.config.name,
      ...(vm.config.lock ? { lock: vm.config.lock } : {}),
      ...(vm.config.template ? { template: 1 } : {}),
      ...(vm.config.tags ? { tags: vm.config.tags } : {}),
      ...(agentEnabled(vm) ? { agent: 1 } : {}),
      cpus: Number(vm.config.cores ?? 1),
      maxmem: resource(vm).maxmem,
      uptime: resource(vm).uptime,
      ha: { managed: 0 },
    };
  }

  function start({ vmid, user }: RouteContext): string {
    return state.tasks.start('qmstart', vmid, user, async (log) => {
      await state.flocks.with(`vm-${vmid}`, state.latency.configFlockWaitMs, flockTimeout(vmid), async () => {
        const vm = state.vms.get(vmid);
        if (!vm) throw new Error(configMissing(node, vmid));
        if (vm.config.template) throw new Error("you can't start a vm if it's a template");
        checkLock(vm);
        if (vm.status === 'running') throw new Error(`VM ${vmid} already running`);
        if (Object.values(vm.config).some(isCloudInitDrive)) log('generating cloud-init ISO');
        await wait(state.latency.startMs);
        vm.status = 'running';
        vm.startedAt = Date.now();
        hooks.onStart?.(vmid, vm);
      });
    });
  }

  function stop({ vmid, user }: RouteContext): string {
    return state.tasks.start('qmstop', vmid, user, async () => {
      await state.flocks.with(`vm-${vmid}`, state.latency.configFlockWaitMs, flockTimeout(vmid), async () => {
        const vm = state.vms.get(vmid);
        if (!vm) throw new Error(configNotFound(node, vmid));
        checkLock(vm);
        if (vm.status === 'stopped') return; // stop-stopped: TASK OK
        await wait(state.latency.stopMs);
        vm.status = 'stopped';
        vm.startedAt = undefined;
        hooks.onStop?.(vmid);
      });
    });
  }

  function destroy({ vmid, user }: RouteContext): string {
    const vm = requireVm(vmid);
    if (vm.config.protection) throw new SimHttpError(500, `can't remove VM ${vmid} - protection mode enabled`);
    if (vm.status === 'running') throw new SimHttpError(500, `VM ${vmid} is running - destroy failed`);
    return state.tasks.start('qmdestroy', vmid, user, async () => {
      await state.flocks.with(`vm-${vmid}`, state.latency.configFlockWaitMs, flockTimeout(vmid), async () => {
        const current = state.vms.get(vmid);
        if (!current) throw new Error(configMissing(node, vmid));
        checkLock(current);
        await wait(state.latency.destroyMs);
        state.vms.delete(vmid); // the config goes last: the VMID is free only now
        hooks.onDestroy?.(vmid);
      });
    });
  }

  async function networkInterfaces({ vmid }: RouteContext) {
    const vm = requireVm(vmid);
    if (!agentEnabled(vm)) throw new SimHttpError(500, 'No QEMU guest agent configured');
    if (vm.status !== 'running') throw new SimHttpError(500, `VM ${vmid} is not running`);
    if (Date.now() - (vm.startedAt ?? 0) < state.latency.bootMs) {
      await wait(state.latency.agentPingTimeoutMs); // the guest-ping timeout
      throw new SimHttpError(500, 'QEMU guest agent is not running');
    }
    const mac = /([0-9A-F]{2}:){5}[0-9A-F]{2}/i.exec(String(vm.config.net0 ?? ''))?.[0] ?? SimState.newMac();
    return {
      result: [
        {
          name: 'lo',
          'hardware-address': '00:00:00:00:00:00',
          'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }],
        },
        {
          name: 'eth0',
          'hardware-address': mac.toLowerCase(),
          'ip-addresses': [
            { 'ip-address': 'fe80::be24:11ff:fe00:1', 'ip-address-type': 'ipv6', prefix: 64 },
            {
              'ip-address': guestIpv4(vmid),
              'ip-address-type': 'ipv4',
              prefix: state.guestNet === 'loopback' ? 8 : 16,
            },
          ],
        },
      ],
    };
  }

  /** On vmbr1 as in production; `loopback` when the guest is a host process (reachable on 127/8). */
  function guestIpv4(vmid: number): string {
    return `${state.guestNet === 'loopback' ? '127.77' : '10.77'}.${(vmid >> 8) & 255}.${vmid & 255}`;
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

  function task(ctx: RouteContext, part: 'status' | 'log') {
    const upid = ctx.params.upid!;
    if (!/^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:[^:\s/]+:[^:\s/]*:[^:\s/]+:$/i.test(upid)) {
      throw paramError({ upid: 'unable to parse worker upid' });
    }
    const found = state.tasks.get(upid);
    if (!found || found.node !== ctx.params.node) throw paramError({ upid: 'no such task' });
    if (part === 'log') return found.log.map((t, i) => ({ n: i + 1, t }));
    const [userName, tokenid] = found.user.split('!');
    const { log: _log, user: _user, ...rest } = found;
    return { ...rest, user: userName, ...(tokenid ? { tokenid } : {}) };
  }

  return [
    {
      method: 'GET',
      path: '/version',
      handler: () => ({ version: '8.4.1', release: '8.4', repoid: '2a5fa54a8503f96d' }),
    },
    { method: 'GET', path: '/cluster/nextid', handler: nextid },
    {
      method: 'GET',
      path: '/cluster/resources',
      handler: ({ params }) =>
        params.type === undefined || params.type === 'vm' ? [...state.vms.values()].map(resource) : [],
    },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/clone', handler: clone },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/config', handler: getConfig },
    { method: 'PUT', path: '/nodes/{node}/qemu/{vmid}/config', handler: putConfig },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/status/current', handler: statusCurrent },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/status/start', handler: start },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/status/stop', handler: stop },
    { method: 'DELETE', path: '/nodes/{node}/qemu/{vmid}', handler: destroy },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces', handler: networkInterfaces },
    { method: 'GET', path: '/nodes/{node}/tasks/{upid}/status', handler: (ctx) => task(ctx, 'status') },
    { method: 'GET', path: '/nodes/{node}/tasks/{upid}/log', handler: (ctx) => task(ctx, 'log') },
    ...createSnapshotRoutes(state, hooks),
  ];
}
