// VMs: list, create, index, template, resize and destroy, with PVE 8.4's sync-versus-task error split
// (error-catalog.json); their volumes are made and freed through the storage model (storage.ts).
import { randomUUID } from 'node:crypto';
import { DRIVE_FORMAT, parsePropertyString, printPropertyString } from '../../common/property-string';
import { Access, type PowerHooks, type Route, type RouteContext } from './access';
import { withMacs } from './config';
import { DRIVE_KEY, drives, formatSize, runVolumeStep, type Drive } from './drives';
import { SimHttpError } from './errors';
import { sizeBytes, vmStatus } from './power';
import type { ConfigValue, SimState } from './state';
import { volumes } from './storage';

/** vmdiridx: the same list for any VMID (it does not even load the config). */
const VM_SUBDIRS = [
  'config',
  'cloudinit',
  'pending',
  'status',
  'unlink',
  'vncproxy',
  'termproxy',
  'migrate',
  'resize',
  'move',
  'rrd',
  'rrddata',
  'monitor',
  'agent',
  'snapshot',
  'spiceproxy',
  'sendkey',
  'firewall',
  'mtunnel',
  'remote_migrate',
];

/** The `unusedN` entries: volumes detached from the VM but still its own (their name says its VMID). */
function unusedDrives(state: SimState, config: Record<string, ConfigValue>): Drive[] {
  return Object.keys(config)
    .filter((key) => /^unused\d+$/.test(key))
    .flatMap((key) => {
      const [id, volname] = String(config[key]).split(/:(.*)/s);
      const storage = state.storage(id ?? '');
      return storage && volname
        ? [{ key, values: { file: String(config[key]) }, storage, volname, cloudinit: false }]
        : [];
    });
}

export function createQemuRoutes(state: SimState, hooks: PowerHooks): Route[] {
  const access = new Access(state);

  function list({ node, params }: RouteContext) {
    return [...state.vms.values()].filter((vm) => vm.node === node).map((vm) => vmStatus(vm, params.full === '1'));
  }

  /** create_vm without an archive: the config is created and locked in the request, its disks in the task. */
  function create({ node, params, user }: RouteContext): string {
    const vmid = Number(params.vmid);
    const existing = state.vms.get(vmid);
    if (existing) {
      throw new SimHttpError(500, `unable to create VM ${vmid} - VM ${vmid} already exists on node '${existing.node}'`);
    }
    const { vmid: _vmid, node: _node, start, storage: _storage, pool: _pool, ...settings } = params;
    state.vms.set(vmid, { vmid, node, config: { lock: 'create' }, status: 'stopped' });
    return access.task(node, 'qmcreate', vmid, user, async (task) => {
      const vm = access.vmInTask(node, vmid);
      const config: Record<string, ConfigValue> = withMacs(state, settings);
      try {
        for (const key of Object.keys(config).filter((k) => DRIVE_KEY.test(k))) {
          // `<storage>:<size in GiB>` or `<storage>:cloudinit` asks for a new volume; anything else is taken as written.
          const drive = parsePropertyString(String(config[key]), DRIVE_FORMAT, { lenient: true });
          const m = /^([^:]+):(\d+(?:\.\d+)?|cloudinit)$/.exec(drive.file ?? '');
          const storage = m ? state.storage(m[1]!) : undefined;
          if (!m || !storage) continue;
          await runVolumeStep(
            state,
            node,
            storage,
            'vdisk_alloc',
            state.latency.storageSteps[storage.type].allocImageMs,
          );
          const cloudinit = m[2] === 'cloudinit';
          const index = Number(/\d+$/.exec(key)?.[0] ?? 0);
          const volname = cloudinit ? volumes.cloudinit(storage, vmid) : volumes.disk(storage, vmid, index);
          const extra: Record<string, string> = cloudinit
            ? { media: 'cdrom' }
            : { size: formatSize(Number(m[2]) * 1024 ** 3) };
          config[key] = printPropertyString({ ...drive, ...extra, file: `${storage.id}:${volname}` }, DRIVE_FORMAT);
        }
        config.smbios1 ??= `uuid=${randomUUID()}`;
        config.vmgenid ??= randomUUID();
        vm.config = config;
      } catch (err) {
        state.vms.delete(vmid);
        throw new Error(`unable to create VM ${vmid} - ${(err as Error).message}`);
      }
      if (start === '1') {
        task.log('Execute autostart');
        Object.assign(vm, { status: 'running', qmpstatus: 'running', startedAt: Date.now() });
        hooks.onStart?.(vmid, vm);
      }
    });
  }

  function template({ node, vmid, user }: RouteContext): string {
    const check = (inTask: boolean) => {
      const fail = (message: string) => (inTask ? new Error(message) : new SimHttpError(500, message));
      const vm = inTask ? access.vmInTask(node, vmid) : access.vm(node, vmid);
      if (vm.config.lock) throw fail(`VM is locked (${vm.config.lock})`);
      if (vm.snapshots?.size) throw fail('unable to create template, because VM contains snapshots');
      if (vm.config.template) throw fail("you can't convert a template to a template");
      if (vm.status === 'running') throw fail("you can't convert a VM to template if VM is running");
      return vm;
    };
    check(false);
    return access.task(node, 'qmtemplate', vmid, user, async () => {
      await access.underConfigFlock(vmid, async () => {
        const vm = check(true);
        vm.config.template = 1;
        // template_create: every disk but the cloud-init drive becomes a base volume (vdisk_create_base).
        for (const drive of drives(state, vm.config).filter((d) => !d.cloudinit)) {
          const ms = state.latency.storageSteps[drive.storage.type].cloneImageMs;
          await runVolumeStep(state, node, drive.storage, 'vdisk_create_base', ms);
          const base = drive.volname.replace(/(^|\/)vm-(\d+-disk-\d+)/, '$1base-$2');
          vm.config[drive.key] = printPropertyString(
            { ...drive.values, file: `${drive.storage.id}:${base}` },
            DRIVE_FORMAT,
          );
        }
      });
    });
  }

  /**
   * qemu-server's resize_vm (src/PVE/API2/Qemu.pm, stable-bookworm 5ccd363e, 8.4.10): nothing is checked
   * before the worker forks, so even a missing VM is the task's failure. Sizes compare with the volume's
   * (here: the drive's `size`); a smaller one is refused, an equal one returns before anything is written.
   */
  function resize({ node, vmid, user, params }: RouteContext): string {
    return access.task(node, 'resize', vmid, user, async () => {
      await access.underConfigFlock(vmid, async () => {
        const vm = access.vmInTask(node, vmid);
        if (params.digest && params.digest !== state.digest(vm)) {
          throw new Error('checksum mismatch (file change by other user?)');
        }
        access.checkLock(vm);
        const value = vm.config[params.disk!];
        if (value === undefined) throw new Error(`disk '${params.disk}' does not exist`);
        const drive = parsePropertyString(String(value), DRIVE_FORMAT, { lenient: true });
        if (!drive.file) throw new Error(`disk '${params.disk}' has no associated volume`);
        if (drive.media === 'cdrom') throw new Error("you can't resize a cdrom");
        const current = sizeBytes(drive.size);
        const m = /^(\+)?(\d+(?:\.\d+)?)([KMGT])?$/.exec(params.size!)!;
        const scale = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[3] as 'K'] ?? 1;
        const wanted = Math.floor(Number(m[2]) * scale + (m[1] ? current : 0));
        if (wanted < current) throw new Error('shrinking disks is not supported');
        if (wanted === current) return;
        vm.config[params.disk!] = printPropertyString({ ...drive, size: formatSize(wanted) }, DRIVE_FORMAT);
      });
    });
  }

  function destroy({ node, vmid, user }: RouteContext): string {
    const vm = access.vm(node, vmid);
    if (vm.config.protection) throw new SimHttpError(500, `can't remove VM ${vmid} - protection mode enabled`);
    if (vm.status === 'running') throw new SimHttpError(500, `VM ${vmid} is running - destroy failed`);
    return access.task(node, 'qmdestroy', vmid, user, async (task) => {
      await access.underConfigFlock(vmid, async () => {
        const current = access.vmInTask(node, vmid);
        if (current.config.lock !== 'suspended') access.checkLock(current);
        // destroy_vm frees every volume the config names, the detached (`unusedN`) ones too.
        const own = [...drives(state, current.config), ...unusedDrives(state, current.config)];
        if (current.config.template) {
          for (const drive of own) {
            const volid = `${drive.storage.id}:${drive.volname}`;
            const used = [...state.vms.values()].some((other) => other.linkedTo?.includes(volid));
            if (used) throw new Error(`base volume '${volid}' is still in use by linked cloned`);
          }
        }
        const freeing = own.reduce((sum, d) => sum + state.latency.storageSteps[d.storage.type].freeImageMs, 0);
        await task.sleep(Math.max(0, state.latency.destroyMs - freeing));
        for (const drive of own) {
          const ms = state.latency.storageSteps[drive.storage.type].freeImageMs;
          await runVolumeStep(state, node, drive.storage, 'vdisk_free', ms);
          await state.freeVolumeData(`${drive.storage.id}:${drive.volname}`);
        }
        state.vms.delete(vmid); // the config goes last: the VMID is free only now
        state.ledger.push({
          op: 'destroy',
          vmid,
          description: current.config.description as string | undefined,
          volumes: own.map((d) => `${d.storage.id}:${d.volname}`),
        });
        hooks.onDestroy?.(vmid);
      });
    });
  }

  return [
    { method: 'GET', path: '/nodes/{node}/qemu', handler: list },
    { method: 'POST', path: '/nodes/{node}/qemu', handler: create },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}', handler: () => VM_SUBDIRS.map((subdir) => ({ subdir })) },
    { method: 'DELETE', path: '/nodes/{node}/qemu/{vmid}', handler: destroy },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/template', handler: template },
    { method: 'PUT', path: '/nodes/{node}/qemu/{vmid}/resize', handler: resize },
  ];
}
