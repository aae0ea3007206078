// POST …/clone as qemu-server's clone_vm does it: checks before and inside the qmclone task, the target's
// 1 s flock, the temporary `lock: clone` config, and per drive a volume step that holds the storage lock only
// where pve-storage takes it (data/storage-locks.json): a linked clone is two short locked steps, not one long one.
import { randomUUID } from 'node:crypto';
import { DRIVE_FORMAT, NET_FORMAT, parsePropertyString, printPropertyString } from '../../common/property-string';
import { Access, type Route, type RouteContext } from './access';
import { drives, runVolumeStep, type Drive } from './drives';
import { flockTimeout, paramError, SimHttpError, storageFlockTimeout } from './errors';
import type { ConfigValue, SimState, SimVm } from './state';
import { volumeFormat, volumeHasFeature, volumes, type SimStorage } from './storage';
import { INTERRUPTED, type TaskContext } from './tasks';

/** What clone_vm does not copy: snapshot bookkeeping, unused volumes (their owner changes anyway), the lock. */
const NOT_CLONED =
  /^(parent|snaptime|vmstate|snapstate|runningcpu|runningmachine|unused\d+|template|lock|name|description)$/;
/** The size volume_size_info reports for a new cloud-init drive (Cloudinit.pm CLOUDINIT_DISK_SIZE). */
const CLOUDINIT_SIZE = '4M';

interface Plan {
  source: SimVm;
  oldConfig: Record<string, ConfigValue>;
  list: Drive[];
  full: boolean;
  targetStorage?: SimStorage;
}

export function createCloneRoutes(state: SimState): Route[] {
  const access = new Access(state);

  /** $load_and_check: everything clone_vm refuses, run before the fork (HTTP errors) and again inside (task errors). */
  function plan({ node, vmid, params }: RouteContext, inTask: boolean): Plan {
    const fail = (message: string) => (inTask ? new Error(message) : new SimHttpError(500, message));
    const target = params.target === node || params.target === 'localhost' ? undefined : params.target;
    if (target && !state.nodes.includes(target)) throw fail(`no such cluster node '${target}'`);
    const targetStorage = params.storage === undefined ? undefined : state.storage(params.storage);
    if (params.storage !== undefined) {
      if (!targetStorage) throw fail(`storage '${params.storage}' does not exist`);
      if (!targetStorage.content.includes('images')) {
        throw paramError({ storage: `storage '${params.storage}' does not support vm images` });
      }
      if (target && !targetStorage.shared) throw fail(`can't clone to non-shared storage '${params.storage}'`);
    }
    const source = inTask ? access.vmInTask(node, vmid) : access.vm(node, vmid);
    if (source.config.lock) throw fail(`VM is locked (${source.config.lock})`);
    const snap = params.snapname ? source.snapshots?.get(params.snapname) : undefined;
    if (params.snapname && !snap) throw fail(`snapshot '${params.snapname}' does not exist`);
    const full = params.full === undefined ? !source.config.template : params.full === '1';
    if (params.storage !== undefined && !full) throw fail("parameter 'storage' not allowed for linked clones");
    if (params.format !== undefined && !full) throw fail("parameter 'format' not allowed for linked clones");
    const oldConfig = snap?.config ?? source.config;
    const list = drives(state, oldConfig);
    for (const drive of list) {
      if (full || drive.cloudinit || volumeHasFeature(drive.storage, 'clone', drive.volname)) continue;
      const of = params.snapname ? ' a snapshot of' : '';
      throw fail(`Linked clone feature is not supported for${of} '${drive.values.file}' (${drive.key})`);
    }
    if (target && list.some((d) => !d.storage.shared)) {
      throw fail(`can't clone VM to node '${target}' (VM uses local storage)`);
    }
    const newid = Number(params.newid);
    if (state.vms.get(newid)?.node === node) throw fail(`unable to create VM ${newid}: config file already exists`);
    return { source, oldConfig, list, full, targetStorage };
  }

  function clone(ctx: RouteContext): string {
    const { node, vmid, params, user } = ctx;
    access.vmForCheckRunning(node, vmid); // check_running comes first: the other face of a missing source
    const newid = Number(params.newid);
    if (state.faults.stealCloneTargets > 0 && !state.vms.has(newid)) {
      state.faults.stealCloneTargets--;
      state.vms.set(newid, { vmid: newid, node, config: { name: `stolen-${newid}`, cores: 1 }, status: 'stopped' });
    }
    plan(ctx, false);
    return access.task(node, 'qmclone', vmid, user, async (task) => {
      // The target's flock (1 s wait) is the only thing that separates two callers that chose one newid.
      const checked = await state.flocks.with(
        `vm-${newid}`,
        state.latency.cloneFlockWaitMs,
        flockTimeout(newid),
        async () => {
          const result = plan(ctx, true);
          // The temporary config: pmxcfs refuses it when the VMID exists on any node.
          if (state.vms.has(newid)) throw new Error(`unable to create VM ${newid}: config file already exists`);
          state.vms.set(newid, { vmid: newid, node, config: { lock: 'clone' }, status: 'stopped' });
          return result;
        },
      );
      try {
        await cloneVolumes(ctx, checked, task);
      } catch (err) {
        state.vms.delete(newid); // PVE frees the new volumes and unlinks the config, last
        const reason = (err as Error).message === INTERRUPTED ? 'interrupted by signal' : (err as Error).message;
        throw new Error(`clone failed: ${reason}`);
      }
    });
  }

  /** The new VM's settings: everything but snapshots and unused volumes, a new MAC per NIC, a new smbios uuid. */
  function newConfig({ params, vmid }: RouteContext, oldConfig: Record<string, ConfigValue>) {
    const config: Record<string, ConfigValue> = {};
    for (const [key, value] of Object.entries(oldConfig)) {
      if (NOT_CLONED.test(key)) continue;
      if (/^net\d+$/.test(key)) {
        const net = parsePropertyString(String(value), NET_FORMAT);
        config[key] = printPropertyString({ ...net, macaddr: state.newMac() }, NET_FORMAT);
      } else config[key] = value;
    }
    const smbios = String(oldConfig.smbios1 ?? '').replace(/(^|,)uuid=[^,]*/, '');
    config.smbios1 = `uuid=${randomUUID()}${smbios ? `,${smbios.replace(/^,/, '')}` : ''}`;
    if (config.vmgenid) config.vmgenid = randomUUID();
    config.name = params.name ?? `Copy-of-VM-${oldConfig.name ?? vmid}`;
    if (params.description) config.description = params.description;
    return config;
  }

  /** Per drive in key order: cloud-init drive allocated, disks cloned (linked) or allocated and copied (full). */
  async function cloneVolumes(ctx: RouteContext, plan: Plan, task: TaskContext): Promise<void> {
    const newid = Number(ctx.params.newid);
    const { list, full, targetStorage } = plan;
    const steps = state.latency.storageSteps;
    const destOf = (d: Drive) => (full || d.cloudinit ? (targetStorage ?? d.storage) : d.storage);
    const lockedMs = (d: Drive) =>
      full || d.cloudinit ? steps[destOf(d).type].allocImageMs : steps[d.storage.type].cloneImageMs;
    const total = full ? state.latency.fullCloneMs : state.latency.linkedCloneMs;
    // The rest of the task holds no storage lock: config writes and activation (linked), the copies (full).
    const unlocked = Math.max(0, total - list.reduce((sum, d) => sum + lockedMs(d), 0));
    const copies = list.filter((d) => !d.cloudinit).length;
    if (!full) await task.sleep(unlocked);
    if (Math.random() < state.faults.lockContention) {
      state.stats.injectedFaults++;
      await task.sleep(Math.min(state.latency.storageLockWaitMs, 200));
      throw new Error(storageFlockTimeout(list[0]?.storage.id ?? 'local-lvm'));
    }
    const config = newConfig(ctx, plan.oldConfig);
    for (const drive of list) delete config[drive.key]; // each comes back as its clone is written
    const linkedTo: string[] = [];
    for (const drive of list) {
      const dest = destOf(drive);
      const index = Number(/\d+$/.exec(drive.key)?.[0] ?? 0);
      task.log(
        `create ${full || drive.cloudinit ? 'full' : 'linked'} clone of drive ${drive.key} (${drive.values.file})`,
      );
      let volname: string;
      if (drive.cloudinit) {
        await runVolumeStep(state, ctx.node, dest, 'vdisk_alloc', lockedMs(drive));
        volname = volumes.cloudinit(dest, newid);
      } else if (full) {
        await runVolumeStep(state, ctx.node, dest, 'vdisk_alloc', lockedMs(drive));
        const format = dest.type === 'dir' ? volumeFormat(drive.storage, drive.volname) : 'raw';
        volname = volumes.disk(dest, newid, index, ctx.params.format ?? format);
        await task.sleep(unlocked / copies); // qemu-img convert: outside the lock
      } else {
        await runVolumeStep(state, ctx.node, dest, 'vdisk_clone', lockedMs(drive));
        volname = volumes.linked(dest, drive.volname, newid, index);
        linkedTo.push(`${drive.storage.id}:${drive.volname}`);
      }
      if (dest.type === 'lvmthin') task.log(`  Logical volume "${volname.split('/').pop()}" created.`);
      const size = drive.cloudinit ? CLOUDINIT_SIZE : drive.values.size;
      config[drive.key] = printPropertyString(
        { ...drive.values, file: `${dest.id}:${volname}`, ...(size ? { size } : {}) },
        DRIVE_FORMAT,
      );
      const vm = state.vms.get(newid);
      if (vm) vm.config = { ...config, lock: 'clone' }; // write_config after each disk, still locked
    }
    const vm = state.vms.get(newid);
    if (vm) Object.assign(vm, { config, ...(linkedTo.length ? { linkedTo } : {}) });
    state.ledger.push({ op: 'clone', vmid: newid, description: config.description as string | undefined });
  }

  return [{ method: 'POST', path: '/nodes/{node}/qemu/{vmid}/clone', handler: clone }];
}
