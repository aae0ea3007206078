// move_disk's reassign form (`target-vmid`): a volume goes from one VM to another on the same node and is renamed
// to the target's VMID. Checks, texts and task id follow qemu-server's move_vm_disk (src/PVE/API2/Qemu.pm,
// commit e6352be6): its load_and_check_reassign_configs runs once before the fork (a 500) and again in the task.
// Moving a disk to another storage (`storage`) is not modelled.
import {
  DRIVE_FORMAT,
  isCloudInitVolume,
  parsePropertyString,
  printPropertyString,
} from '../../common/property-string';
import { DRIVE_KEY } from './drives';
import { Access, type Route, type RouteContext } from './access';
import { paramError, SimHttpError } from './errors';
import type { ConfigValue, SimState, SimVm } from './state';
import { volumeFormat } from './storage';

/** Every volume id any VM (or snapshot) on `storageId` names: find_free_diskname must not reuse one. */
function usedVolnames(state: SimState, storageId: string): Set<string> {
  const used = new Set<string>();
  const add = (config: Record<string, ConfigValue>) => {
    for (const [key, value] of Object.entries(config)) {
      if (!DRIVE_KEY.test(key) && !/^unused\d+$/.test(key)) continue; // descriptions, nets: not volumes
      const file = parsePropertyString(String(value), DRIVE_FORMAT, { lenient: true }).file ?? '';
      const [id, volname] = file.split(/:(.*)/s);
      if (id === storageId && volname) used.add(volname.replace(/^.*\//, ''));
    }
  };
  for (const vm of state.vms.values()) {
    add(vm.config);
    for (const snap of vm.snapshots?.values() ?? []) add(snap.config);
  }
  return used;
}

export function createMoveDiskRoutes(state: SimState): Route[] {
  const access = new Access(state);

  function moveDisk({ node, vmid, params, user }: RouteContext): string {
    const target = params['target-vmid'] === undefined ? undefined : Number(params['target-vmid']);
    const disk = params.disk!;
    const targetDisk = params['target-disk'] ?? disk;
    if (target !== undefined && params.storage !== undefined) {
      const msg = "either set 'storage' or 'target-vmid', but not both";
      throw paramError({ 'target-vmid': msg, storage: msg });
    }
    if (target === undefined && params.storage === undefined) {
      const msg = "both 'storage' and 'target-vmid' missing, either needs to be set";
      throw paramError({ 'target-vmid': msg, storage: msg });
    }
    if (target === undefined) throw new SimHttpError(501, 'move_disk to another storage is not simulated');
    if (target === vmid) throw paramError({ 'target-vmid': 'must be different than source VMID to reassign disk' });

    const check = (inTask: boolean) => {
      const fail = (message: string) => (inTask ? new Error(message) : new SimHttpError(500, message));
      const source = state.vms.get(vmid);
      const dest = state.vms.get(target);
      if (!source) throw fail(`could not find VM ${vmid}`);
      if (!dest) throw fail(`could not find target VM ${target}`);
      if (source.node !== dest.node)
        throw fail(`Both VMs need to be on the same node (${source.node} != ${dest.node})`);
      for (const vm of [source, dest]) if (vm.config.lock) throw fail(`VM is locked (${vm.config.lock})`);
      if (source.config.template || dest.config.template) throw fail("Can't move disks from or to template VMs");
      const digestOf = (vm: SimVm, given: string | undefined, id: number) => {
        if (given && given !== state.digest(vm))
          throw fail(`VM ${id}: detected modified configuration - file changed by other user? Try again.`);
      };
      digestOf(source, params.digest, vmid);
      digestOf(dest, params['target-digest'], target);
      const value = source.config[disk];
      if (value === undefined) throw fail(`Disk '${disk}' for VM '${vmid}' does not exist`);
      if (dest.config[targetDisk] !== undefined) {
        throw fail(`Target disk key '${targetDisk}' is already in use for VM '${target}'`);
      }
      const drive = parsePropertyString(String(value), DRIVE_FORMAT, { lenient: true });
      const volid = drive.file;
      if (!volid) throw fail(`disk '${disk}' has no associated volume`);
      if (drive.media === 'cdrom' || isCloudInitVolume(volid))
        throw fail("CD drive contents can't be moved to another VM");
      const [storageId, volname] = volid.split(/:(.*)/s);
      const storage = state.storage(storageId ?? '');
      if (!storage || !volname) throw fail(`Volume '${volid}' not managed by PVE`);
      const inSnapshot = [...(source.snapshots?.values() ?? [])].some((s) =>
        Object.values(s.config).some((v) => String(v).split(',').includes(volid) || String(v).startsWith(`${volid},`)),
      );
      if (inSnapshot) throw fail("Can't move disk used by a snapshot to another VM");
      // pve-storage's `rename` feature: only a current (not base) volume.
      if (/(^|\/)base-\d+-disk-\d+/.test(volname))
        throw fail('Storage does not support moving of this disk to another VM');
      if (source.status === 'running' && !/^unused\d+$/.test(disk)) {
        throw fail('Cannot move disk to another VM while the source VM is running - detach first');
      }
      return { source, dest, drive, volid, storage, volname };
    };
    check(false);
    return access.task(node, 'qmmove', `${vmid}-${disk}>${target}-${targetDisk}`, user, async (task) => {
      await access.underConfigFlock(vmid, () =>
        access.underConfigFlock(target, async () => {
          const { source, dest, drive, volid, storage, volname } = check(true);
          task.log(`reassign disk '${disk}' from VM '${vmid}' as '${targetDisk}' to VM '${target}'`);
          // rename_volume: find_free_diskname for the target's VMID, same format.
          const used = usedVolnames(state, storage.id);
          let index = 0;
          while ([...used].some((v) => v.startsWith(`vm-${target}-disk-${index}`))) index++;
          const format = volumeFormat(storage, volname);
          const newName =
            storage.type === 'dir' ? `${target}/vm-${target}-disk-${index}.${format}` : `vm-${target}-disk-${index}`;
          const newVolid = `${storage.id}:${newName}`;
          await state.renameVolumeData(volid, newVolid);
          delete source.config[disk];
          task.log(`removing disk '${disk}' from VM '${vmid}' config`);
          const file = /^unused\d+$/.test(targetDisk) ? { file: newVolid } : { ...drive, file: newVolid };
          dest.config[targetDisk] = printPropertyString(file, DRIVE_FORMAT);
          state.ledger.push({ op: 'move-disk', vmid, target, volume: volid, renamedTo: newVolid });
        }),
      );
    });
  }

  return [{ method: 'POST', path: '/nodes/{node}/qemu/{vmid}/move_disk', handler: moveDisk }];
}
