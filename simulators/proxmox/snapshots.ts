// The simulated snapshot endpoints: list, take, roll back and delete, each task holding its config lock.
import { configMissing, flockTimeout, SimHttpError } from './errors';
import type { PowerHooks, Route, RouteContext } from './qemu';
import { typedConfig, type ConfigValue, type SimSnapshot, type SimState, type SimVm } from './state';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const DISK_KEY = /^(scsi|virtio|sata|ide)\d+$/;
/** Not part of what a snapshot copies (pve-guest-common snapshot_copy_config). */
const NOT_COPIED = /^(snapshots|snapstate|snaptime|vmstate|lock|digest|description|parent|unused\d+)$/;

export function createSnapshotRoutes(state: SimState, hooks: PowerHooks): Route[] {
  const node = state.node;

  function requireVm(vmid: number): SimVm {
    const vm = state.vms.get(vmid);
    if (!vm) throw new SimHttpError(500, configMissing(node, vmid));
    return vm;
  }
  /** Inside a task: the checks PVE repeats under the config flock, failing the task with its text. */
  function loadInTask(vmid: number): SimVm {
    const vm = state.vms.get(vmid);
    if (!vm) throw new Error(configMissing(node, vmid));
    return vm;
  }
  function checkLock(vm: SimVm): void {
    if (vm.config.lock) throw new Error(`VM is locked (${vm.config.lock})`);
  }
  function snapshotOf(vm: SimVm, name: string): SimSnapshot {
    const snap = vm.snapshots?.get(name);
    if (!snap) throw new Error(`snapshot '${name}' does not exist`);
    return snap;
  }
  const underFlock = <T>(vmid: number, work: () => Promise<T>) =>
    state.flocks.with(`vm-${vmid}`, state.latency.configFlockWaitMs, flockTimeout(vmid), work);
  /** Raw images on a directory storage cannot be snapshotted; LVM-thin volumes can. */
  const snapshotable = (vm: SimVm) =>
    Object.entries(vm.config).every(
      ([key, value]) => !DISK_KEY.test(key) || /media=cdrom/.test(String(value)) || !/\.raw(,|$)/.test(String(value)),
    );

  function list({ vmid }: RouteContext) {
    const vm = requireVm(vmid);
    const snapshots = [...(vm.snapshots?.values() ?? [])].map((s) => ({
      name: s.name,
      description: s.description ?? '',
      snaptime: s.snaptime,
      vmstate: s.vmstate ? 1 : 0,
      ...(s.parent ? { parent: s.parent } : {}),
      ...(s.snapstate ? { snapstate: s.snapstate } : {}),
    }));
    const current = {
      name: 'current',
      description: 'You are here!',
      digest: state.digest(vm),
      running: vm.status === 'running' ? 1 : 0,
      ...(vm.config.parent ? { parent: vm.config.parent } : {}),
    };
    return [...snapshots, current];
  }

  function snapshotConfig({ vmid, params }: RouteContext) {
    const vm = requireVm(vmid);
    const snap = vm.snapshots?.get(params.snapname!);
    if (!snap) throw new SimHttpError(500, `snapshot '${params.snapname}' does not exist`);
    return {
      ...typedConfig(snap.config),
      ...(snap.parent ? { parent: snap.parent } : {}),
      ...(snap.description ? { description: snap.description } : {}),
      snaptime: snap.snaptime,
      ...(snap.vmstate ? { vmstate: 1 } : {}),
    };
  }

  function take({ vmid, params, user }: RouteContext): string {
    const name = params.snapname!;
    // The API refuses the reserved names before it forks a task.
    if (name === 'current' || name.toLowerCase() === 'pending') {
      throw new SimHttpError(500, `unable to use snapshot name '${name.toLowerCase()}' (reserved name)`);
    }
    requireVm(vmid);
    return state.tasks.start('qmsnapshot', vmid, user, async () => {
      await underFlock(vmid, async () => {
        const vm = loadInTask(vmid);
        if (vm.config.template) throw new Error("you can't take a snapshot if it's a template");
        checkLock(vm);
        if (vm.snapshots?.has(name)) throw new Error(`snapshot name '${name}' already used`);
        if (!snapshotable(vm)) throw new Error('snapshot feature is not available');
        const config = Object.fromEntries(Object.entries(vm.config).filter(([k]) => !NOT_COPIED.test(k)));
        vm.snapshots ??= new Map();
        vm.snapshots.set(name, {
          name,
          description: params.description,
          snaptime: Math.floor(Date.now() / 1000),
          vmstate: params.vmstate === '1',
          parent: vm.config.parent === undefined ? undefined : String(vm.config.parent),
          snapstate: 'prepare',
          config,
        });
        vm.config.lock = 'snapshot';
      });
      await sleep(state.latency.snapshotMs); // the volume snapshots, outside the flock but under the lock
      await underFlock(vmid, async () => {
        const vm = loadInTask(vmid);
        delete vm.snapshots!.get(name)!.snapstate;
        delete vm.config.lock;
        vm.config.parent = name;
      });
    });
  }

  function rollback({ vmid, params, user }: RouteContext): string {
    const name = params.snapname!;
    return state.tasks.start('qmrollback', vmid, user, async () => {
      let snap!: SimSnapshot;
      await underFlock(vmid, async () => {
        const vm = loadInTask(vmid);
        if (vm.config.template) throw new Error("you can't rollback if vm is a template");
        snap = snapshotOf(vm, name);
        if (snap.snapstate)
          throw new Error(`unable to rollback to incomplete snapshot (snapstate = ${snap.snapstate})`);
        checkLock(vm);
        if (vm.status === 'running' && !snap.vmstate) {
          // A disk-only snapshot: PVE stops the VM itself before it touches the volumes.
          await sleep(state.latency.stopMs);
          vm.status = 'stopped';
          vm.startedAt = undefined;
          hooks.onStop?.(vmid);
        }
        vm.config.lock = 'rollback';
      });
      await sleep(state.latency.rollbackMs);
      await underFlock(vmid, async () => {
        const vm = loadInTask(vmid);
        // The description and unused disks stay the VM's own; everything else is the snapshot's.
        const kept = Object.entries(vm.config).filter(([k]) => k === 'description' || /^unused\d+$/.test(k));
        const restored: Record<string, ConfigValue> = { ...Object.fromEntries(kept), ...snap.config, parent: name };
        vm.config = restored;
        if (params.start === '1') {
          vm.status = 'running';
          vm.startedAt = Date.now();
          hooks.onStart?.(vmid, vm);
        }
      });
    });
  }

  function remove({ vmid, params, user }: RouteContext): string {
    const name = params.snapname!;
    return state.tasks.start('qmdelsnapshot', vmid, user, async () => {
      await underFlock(vmid, async () => {
        const vm = loadInTask(vmid);
        if (vm.config.template) throw new Error("you can't delete a snapshot if vm is a template");
        const snap = snapshotOf(vm, name);
        if (params.force !== '1') checkLock(vm);
        snap.snapstate = 'delete';
        vm.config.lock = 'snapshot-delete';
      });
      await sleep(state.latency.deleteSnapshotMs);
      await underFlock(vmid, async () => {
        const vm = loadInTask(vmid);
        const snap = vm.snapshots!.get(name)!;
        vm.snapshots!.delete(name);
        // Whoever descended from it now descends from its parent.
        for (const other of vm.snapshots!.values()) if (other.parent === name) other.parent = snap.parent;
        if (vm.config.parent === name) {
          if (snap.parent) vm.config.parent = snap.parent;
          else delete vm.config.parent;
        }
        delete vm.config.lock;
      });
    });
  }

  return [
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/snapshot', handler: list },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/snapshot', handler: take },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config', handler: snapshotConfig },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback', handler: rollback },
    { method: 'DELETE', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}', handler: remove },
  ];
}
