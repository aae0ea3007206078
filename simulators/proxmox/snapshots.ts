// The simulated snapshot endpoints: list, take, roll back, delete and describe, each task holding its config lock.
import { Access, type PowerHooks, type Route, type RouteContext } from './access';
import { drives } from './drives';
import { SimHttpError } from './errors';
import { typedConfig, type ConfigValue, type SimSnapshot, type SimState, type SimVm } from './state';
import { volumeHasFeature } from './storage';

/** Not part of what a snapshot copies (pve-guest-common snapshot_copy_config). */
const NOT_COPIED = /^(snapshots|snapstate|snaptime|vmstate|lock|digest|description|parent|unused\d+)$/;

export function createSnapshotRoutes(state: SimState, hooks: PowerHooks): Route[] {
  const access = new Access(state);
  const checkLock = (vm: SimVm) => access.checkLock(vm);
  function snapshotOf(vm: SimVm, name: string): SimSnapshot {
    const snap = vm.snapshots?.get(name);
    if (!snap) throw new Error(`snapshot '${name}' does not exist`);
    return snap;
  }
  const underFlock = <T>(vmid: number, work: () => Promise<T>) => access.underConfigFlock(vmid, work);
  /** has_feature('snapshot'): every disk (not CD-ROMs, not the cloud-init drive) on a storage that can; raw files cannot. */
  const snapshotable = (vm: SimVm) =>
    drives(state, vm.config)
      .filter((d) => !d.cloudinit)
      .every((d) => volumeHasFeature(d.storage, 'snapshot', d.volname));

  function list({ node, vmid }: RouteContext) {
    const vm = access.vm(node, vmid);
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

  function snapshotConfig({ node, vmid, params }: RouteContext) {
    const vm = access.vm(node, vmid);
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

  function take({ node, vmid, params, user }: RouteContext): string {
    const name = params.snapname!;
    // The API refuses the reserved names before it forks a task.
    if (name === 'current' || name.toLowerCase() === 'pending') {
      throw new SimHttpError(500, `unable to use snapshot name '${name.toLowerCase()}' (reserved name)`);
    }
    access.vm(node, vmid);
    return access.task(node, 'qmsnapshot', vmid, user, async (task) => {
      await underFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
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
      await task.sleep(state.latency.snapshotMs); // the volume snapshots, outside the flock but under the lock
      await underFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        delete vm.snapshots!.get(name)!.snapstate;
        delete vm.config.lock;
        vm.config.parent = name;
      });
    });
  }

  function rollback({ node, vmid, params, user }: RouteContext): string {
    const name = params.snapname!;
    return access.task(node, 'qmrollback', vmid, user, async (task) => {
      let snap!: SimSnapshot;
      await underFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        if (vm.config.template) throw new Error("you can't rollback if vm is a template");
        snap = snapshotOf(vm, name);
        if (snap.snapstate)
          throw new Error(`unable to rollback to incomplete snapshot (snapstate = ${snap.snapstate})`);
        checkLock(vm);
        if (vm.status === 'running' && !snap.vmstate) {
          // A disk-only snapshot: PVE stops the VM itself before it touches the volumes.
          await task.sleep(state.latency.stopMs);
          vm.status = 'stopped';
          vm.startedAt = undefined;
          delete vm.qmpstatus;
          hooks.onStop?.(vmid);
        }
        vm.config.lock = 'rollback';
      });
      await task.sleep(state.latency.rollbackMs);
      await underFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        // The description and unused disks stay the VM's own; everything else is the snapshot's.
        const kept = Object.entries(vm.config).filter(([k]) => k === 'description' || /^unused\d+$/.test(k));
        const restored: Record<string, ConfigValue> = { ...Object.fromEntries(kept), ...snap.config, parent: name };
        vm.config = restored;
        delete vm.pending; // __snapshot_apply_config keeps only the snapshot's settings, description and unused disks
        delete vm.pendingDelete;
        if (params.start === '1') {
          Object.assign(vm, { status: 'running', qmpstatus: 'running', startedAt: Date.now() });
          hooks.onStart?.(vmid, vm);
        }
      });
    });
  }

  function remove({ node, vmid, params, user }: RouteContext): string {
    const name = params.snapname!;
    return access.task(node, 'qmdelsnapshot', vmid, user, async (task) => {
      await underFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        if (vm.config.template) throw new Error("you can't delete a snapshot if vm is a template");
        const snap = snapshotOf(vm, name);
        if (params.force !== '1') checkLock(vm);
        snap.snapstate = 'delete';
        vm.config.lock = 'snapshot-delete';
      });
      await task.sleep(state.latency.deleteSnapshotMs);
      await underFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
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

  /** update_snapshot_config: only the description, under the config flock; nothing to do without one. */
  async function describe({ node, vmid, params }: RouteContext): Promise<null> {
    if (params.description === undefined) return null;
    const vm = access.vm(node, vmid);
    await underFlock(vmid, async () => {
      access.checkLockSync(vm);
      const snap = vm.snapshots?.get(params.snapname!);
      if (!snap) throw new SimHttpError(500, `snapshot '${params.snapname}' does not exist`);
      snap.description = params.description;
    });
    return null;
  }

  return [
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/snapshot', handler: list },
    {
      method: 'GET',
      path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}',
      handler: () => [{ cmd: 'rollback' }, { cmd: 'config' }],
    },
    { method: 'PUT', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config', handler: describe },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/snapshot', handler: take },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config', handler: snapshotConfig },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback', handler: rollback },
    { method: 'DELETE', path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}', handler: remove },
  ];
}
