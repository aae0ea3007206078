// Power: status/current and start, stop, shutdown, reboot, reset, suspend, resume, with PVE 8.4's
// sync-versus-task error split (error-catalog.json) and qemu-server's vmstatus key set.
import { Access, agentEnabled, type PowerHooks, type Route, type RouteContext } from './access';
import { regenerateCloudInit } from './cloudinit';
import { applyPending } from './config';
import { configMissing, configNotFound, SimHttpError } from './errors';
import type { SimState, SimVm } from './state';
import type { TaskContext } from './tasks';

const SIZE_UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** parse_size of a drive's `size=8G`. */
export function sizeBytes(text: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?/.exec(text ?? '');
  return m ? Math.round(Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? 1)) : 0;
}

/** bootdisk_size: the first boot disk's size (`boot: order=scsi0;net0`), 0 without one. */
function bootDiskBytes(vm: SimVm): number {
  const order = /order=([^,]+)/.exec(String(vm.config.boot ?? ''))?.[1]?.split(';') ?? [];
  const candidates = [...order, ...Object.keys(vm.config).sort()].filter((k) => /^(ide|sata|scsi|virtio)\d+$/.test(k));
  for (const key of candidates) {
    const value = String(vm.config[key] ?? '');
    if (!value || /media=cdrom/.test(value)) continue;
    return sizeBytes(/(?:^|,)size=([^,]+)/.exec(value)?.[1]);
  }
  return 0;
}

export const memoryBytes = (vm: SimVm): number =>
  Number(/(\d+)/.exec(String(vm.config.memory ?? '512'))?.[1] ?? 512) * 1024 * 1024;
export const uptimeOf = (vm: SimVm): number =>
  vm.status === 'running' && vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0;
export const cpusOf = (vm: SimVm): number =>
  Number(vm.config.vcpus ?? Number(vm.config.sockets ?? 1) * Number(vm.config.cores ?? 1));

/** qemu-server vmstatus($vmid, full): what status/current and the VM list report. */
export function vmStatus(vm: SimVm, full: boolean): Record<string, unknown> {
  const running = vm.status === 'running';
  const status: Record<string, unknown> = {
    vmid: vm.vmid,
    status: vm.status,
    name: vm.config.name ?? `VM ${vm.vmid}`,
    cpus: cpusOf(vm),
    maxmem: memoryBytes(vm),
    maxdisk: bootDiskBytes(vm),
    disk: 0,
    uptime: uptimeOf(vm),
    cpu: running ? 0.0123 : 0,
    mem: running ? Math.floor(memoryBytes(vm) * 0.4) : 0,
    netin: running ? 1_048_576 : 0,
    netout: running ? 524_288 : 0,
    ...(vm.config.template ? { template: 1 } : {}),
    ...(Object.keys(vm.config).some((k) => /^serial\d+$/.test(k)) ? { serial: 1 } : {}),
    ...(vm.config.lock ? { lock: vm.config.lock } : {}),
    ...(vm.config.tags !== undefined ? { tags: vm.config.tags } : {}),
  };
  if (running) status.pid = 10_000 + vm.vmid;
  if (!full) return status;
  if (running) {
    Object.assign(status, {
      diskread: 52_428_800,
      diskwrite: 10_485_760,
      blockstat: {},
      nics: { [`tap${vm.vmid}i0`]: { netin: 1_048_576, netout: 524_288 } },
      'running-machine': 'pc-i440fx-9.2+pve1',
      'running-qemu': '9.2.0',
      'proxmox-support': { 'pbs-library-version': '1.5.1', 'query-bitmap-info': true },
    });
  }
  // The last loop of vmstatus sets qmpstatus from status for every VM QMP did not answer for: stopped ones too.
  status.qmpstatus = running ? (vm.qmpstatus ?? 'running') : vm.status;
  return status;
}

export function createPowerRoutes(state: SimState, hooks: PowerHooks): Route[] {
  const access = new Access(state);

  function powerOff(vm: SimVm): void {
    vm.status = 'stopped';
    vm.startedAt = undefined;
    delete vm.qmpstatus;
    hooks.onStop?.(vm.vmid);
  }

  /** vm_start's worker steps after its checks: pending changes in, the cloud-init ISO, QEMU up. */
  async function powerOn(vm: SimVm, task: TaskContext): Promise<void> {
    applyPending(vm, true);
    if (regenerateCloudInit(vm)) task.log('generating cloud-init ISO');
    await task.sleep(state.latency.startMs);
    vm.status = 'running';
    vm.qmpstatus = 'running';
    vm.startedAt = Date.now();
    hooks.onStart?.(vm.vmid, vm);
  }

  function current({ node, vmid }: RouteContext) {
    const vm = access.vm(node, vmid);
    return { ...vmStatus(vm, true), ha: { managed: 0 }, ...(agentEnabled(vm) ? { agent: 1 } : {}) };
  }

  function start({ node, vmid, user }: RouteContext): string {
    return access.task(node, 'qmstart', vmid, user, async (task) => {
      await access.underConfigFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        if (vm.config.template) throw new Error("you can't start a vm if it's a template");
        if (vm.config.lock !== 'suspended') access.checkLock(vm);
        if (vm.status === 'running') throw new Error(`VM ${vmid} already running`);
        await powerOn(vm, task);
      });
    });
  }

  function stop({ node, vmid, user }: RouteContext): string {
    return access.task(node, 'qmstop', vmid, user, async (task) => {
      await access.underConfigFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid, configNotFound(node, vmid));
        access.checkLock(vm);
        if (vm.status === 'stopped') return; // stop-stopped: TASK OK
        await task.sleep(state.latency.stopMs);
        powerOff(vm);
      });
    });
  }

  /** ACPI or the agent's guest-shutdown: a booted guest powers off; one still booting ignores it until the timeout. */
  async function shutdownGuest(vm: SimVm, timeoutS: number, forceStop: boolean, task: TaskContext): Promise<void> {
    const booted = Date.now() - (vm.startedAt ?? 0) >= state.latency.bootMs;
    if (!booted) {
      await task.sleep(timeoutS * 1000);
      if (!forceStop) throw new Error('VM quit/powerdown failed - got timeout');
      task.log('VM quit/powerdown failed - terminating now with SIGTERM');
    }
    await task.sleep(state.latency.stopMs);
    powerOff(vm);
  }

  function shutdown({ node, vmid, user, params }: RouteContext): string {
    const vm = state.vms.get(vmid);
    if (vm?.node === node && vm.qmpstatus === 'paused' && params.forceStop !== '1') {
      throw new SimHttpError(500, 'VM is paused - cannot shutdown');
    }
    return access.task(node, 'qmshutdown', vmid, user, async (task) => {
      await access.underConfigFlock(vmid, async () => {
        const current = access.vmInTask(node, vmid, configNotFound(node, vmid));
        access.checkLock(current);
        if (current.status === 'stopped') return;
        await shutdownGuest(current, Number(params.timeout ?? 60), params.forceStop === '1', task);
      });
    });
  }

  /** The sync checks of reboot, reset, suspend and resume: the VM exists here and runs. */
  function requireRunning(node: string, vmid: number): SimVm {
    const vm = access.vmForCheckRunning(node, vmid);
    if (vm.status !== 'running') throw new SimHttpError(500, `VM ${vmid} not running`);
    return vm;
  }

  function reboot({ node, vmid, user, params }: RouteContext): string {
    const vm = access.vmForCheckRunning(node, vmid);
    if (vm.qmpstatus === 'paused') throw new SimHttpError(500, 'VM is paused - cannot shutdown');
    requireRunning(node, vmid);
    return access.task(node, 'qmreboot', vmid, user, async (task) => {
      const current = access.vmInTask(node, vmid, configMissing(node, vmid));
      access.checkLock(current);
      await shutdownGuest(current, Number(params.timeout ?? 60), false, task);
      await access.underConfigFlock(vmid, () => powerOn(current, task));
    });
  }

  function reset({ node, vmid, user }: RouteContext): string {
    requireRunning(node, vmid);
    return access.task(node, 'qmreset', vmid, user, async () => {
      const vm = access.vmInTask(node, vmid);
      access.checkLock(vm);
      hooks.onStop?.(vmid);
      vm.startedAt = Date.now(); // a hard reset: the guest boots again
      vm.qmpstatus = 'running';
      hooks.onStart?.(vmid, vm);
    });
  }

  function suspend({ node, vmid, user, params }: RouteContext): string {
    requireRunning(node, vmid);
    const toDisk = params.todisk === '1';
    return access.task(node, toDisk ? 'qmsuspend' : 'qmpause', vmid, user, async (task) => {
      await access.underConfigFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        access.checkLock(vm);
        if (!toDisk) {
          vm.qmpstatus = 'paused';
          return;
        }
        vm.config.lock = 'suspending';
        await task.sleep(state.latency.stopMs);
        vm.config.vmstate = `${params.statestorage ?? 'local-lvm'}:vm-${vmid}-state-suspend-${new Date().toISOString().slice(0, 10)}`;
        vm.config.lock = 'suspended';
        powerOff(vm);
      });
    });
  }

  function resume({ node, vmid, user }: RouteContext): string {
    const vm = access.vmForCheckRunning(node, vmid);
    const fromDisk = vm.config.lock === 'suspended';
    if (!fromDisk && vm.status !== 'running') throw new SimHttpError(500, `VM ${vmid} not running`);
    return access.task(node, 'qmresume', vmid, user, async (task) => {
      await access.underConfigFlock(vmid, async () => {
        const current = access.vmInTask(node, vmid);
        if (!fromDisk) {
          current.qmpstatus = 'running';
          return;
        }
        delete current.config.lock;
        delete current.config.vmstate;
        await powerOn(current, task);
      });
    });
  }

  const status = (name: string, handler: Route['handler']): Route => ({
    method: 'POST',
    path: `/nodes/{node}/qemu/{vmid}/status/${name}`,
    handler,
  });
  return [
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/status/current', handler: current },
    status('start', start),
    status('stop', stop),
    status('shutdown', shutdown),
    status('reboot', reboot),
    status('reset', reset),
    status('suspend', suspend),
    status('resume', resume),
  ];
}
