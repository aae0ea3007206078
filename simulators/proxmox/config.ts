// VM config: GET/PUT/POST config and pending, with qemu-server's split between changes a running VM takes at
// once and those left pending, new MACs on write, and the cloud-init record behind GET cloudinit.
import { setTimeout as sleep } from 'node:timers/promises';
import { NET_FORMAT, parsePropertyString, printPropertyString } from '../../common/property-string';
import { Access, type Route, type RouteContext } from './access';
import { paramError, SimHttpError } from './errors';
import { methodSpec, paramSpec } from './schema';
import { NUMERIC_CONFIG_KEYS, typedConfig, type ConfigValue, type SimState, type SimVm } from './state';

for (const [key, spec] of Object.entries(
  methodSpec('/nodes/{node}/qemu/{vmid}/config', 'GET')?.returns.properties ?? {},
)) {
  if (spec.type === 'integer' || spec.type === 'boolean' || spec.type === 'number') NUMERIC_CONFIG_KEYS.add(key);
}

/** Parameters of a config call that are not settings. */
const CALL_PARAMS = new Set(['digest', 'delete', 'revert', 'skiplock', 'force', 'background_delay', 'node', 'vmid']);
const CLOUDINIT_KEYS = /^(cicustom|cipassword|citype|ciupgrade|ciuser|nameserver|searchdomain|sshkeys|ipconfig\d+)$/;
/** qemu-server $fast_plug_option, plus every cloud-init key: a running VM takes these at once. */
const FAST_PLUG =
  /^(description|hookscript|lock|migrate_downtime|migrate_speed|name|onboot|protection|shares|startup|tags|vmstatestorage)$/;
const DISK = /^(ide|sata|scsi|virtio|unused)\d+$/;

/** qemu-server cloudinit_pending_properties: what the cloud-init record tracks. */
const tracked = (key: string) => CLOUDINIT_KEYS.test(key) || key === 'name' || /^net\d+$/.test(key);

/** A running VM's hotplug (default `network,disk,usb`) decides whether a NIC or disk change applies at once. */
function appliesWhileRunning(vm: SimVm, key: string): boolean {
  if (FAST_PLUG.test(key) || CLOUDINIT_KEYS.test(key)) return true;
  const hotplug = String(vm.config.hotplug ?? 'network,disk,usb').split(',');
  if (/^net\d+$/.test(key)) return hotplug.includes('network');
  if (DISK.test(key)) return hotplug.includes('disk');
  if (/^usb\d+$/.test(key)) return hotplug.includes('usb');
  return false;
}

/** qemu-server's cloudinit_record_changed: remembers what cloud-init last saw, so GET cloudinit can show the delta. */
export function recordCloudInitChange(vm: SimVm, key: string, before?: ConfigValue, after?: ConfigValue): void {
  if (!tracked(key)) return;
  const ci = (vm.cloudinit ??= { recorded: {}, added: [] });
  const added = new Set(ci.added);
  const recorded = ci.recorded[key];
  if (after !== undefined) {
    if (recorded !== undefined) {
      if (String(after) === String(recorded)) {
        delete ci.recorded[key]; // back in sync with what cloud-init saw
        added.delete(key);
      }
    } else if (before !== undefined && !added.has(key)) ci.recorded[key] = before;
    else if (before === undefined) added.add(key);
  } else if (before !== undefined && recorded === undefined) {
    if (added.has(key)) added.delete(key);
    else ci.recorded[key] = before;
  }
  ci.added = [...added].sort();
}

/** Writes pending changes into the config: all of them on a stopped VM, what hotplugs on a running one. */
export function applyPending(vm: SimVm, all = vm.status !== 'running'): void {
  for (const key of [...(vm.pendingDelete ?? [])]) {
    if (!all && !appliesWhileRunning(vm, key)) continue;
    recordCloudInitChange(vm, key, vm.config[key], undefined);
    delete vm.config[key];
    vm.pendingDelete = vm.pendingDelete!.filter((k) => k !== key);
  }
  for (const [key, value] of Object.entries(vm.pending ?? {})) {
    if (!all && !appliesWhileRunning(vm, key)) continue;
    recordCloudInitChange(vm, key, vm.config[key], value);
    vm.config[key] = value;
    delete vm.pending![key];
  }
  if (vm.pendingDelete?.length === 0) delete vm.pendingDelete;
  if (vm.pending && Object.keys(vm.pending).length === 0) delete vm.pending;
}

/** The config with pending values taken in (GET config's default, load_current_config). */
export function currentConfig(vm: SimVm, withPending: boolean): Record<string, ConfigValue> {
  const config = { ...vm.config };
  if (withPending) {
    Object.assign(config, vm.pending);
    for (const key of vm.pendingDelete ?? []) delete config[key];
  }
  return config;
}

/** PUT/POST config's add-macaddr step: a NIC written without a MAC gets a new one (parse_net + print_net). */
export function withMacs(state: SimState, changes: Record<string, string>): Record<string, string> {
  const out = { ...changes };
  for (const [key, value] of Object.entries(changes)) {
    if (!/^net\d+$/.test(key)) continue;
    const net = parsePropertyString(value, NET_FORMAT);
    net.macaddr ??= state.newMac();
    out[key] = printPropertyString(net, NET_FORMAT);
  }
  return out;
}

export function createConfigRoutes(state: SimState): Route[] {
  const access = new Access(state);

  function getConfig({ node, vmid, params }: RouteContext) {
    if (params.snapshot && params.current) {
      const message = "cannot use 'snapshot' parameter with 'current'";
      throw paramError({ snapshot: message, current: message });
    }
    const vm = access.vm(node, vmid);
    if (params.snapshot) {
      const snap = vm.snapshots?.get(params.snapshot);
      if (!snap) throw new SimHttpError(500, `snapshot '${params.snapshot}' does not exist`);
      return typedConfig({ ...snap.config, ...(snap.parent ? { parent: snap.parent } : {}), snaptime: snap.snaptime });
    }
    const config = currentConfig(vm, params.current !== '1');
    if (config.cipassword) config.cipassword = '**********';
    return { ...typedConfig(config), digest: state.digest(vm) };
  }

  /** update_vm_api: checks and writes under the config flock in the request; PUT applies there too, POST in a task. */
  async function update(ctx: RouteContext, sync: boolean): Promise<string | null> {
    const { node, vmid, params, user } = ctx;
    const changes = Object.fromEntries(Object.entries(params).filter(([k]) => !CALL_PARAMS.has(k)));
    const deletes = (params.delete ?? '').split(/[,; ]/).filter(Boolean);
    const reverts = (params.revert ?? '').split(/[,; ]/).filter(Boolean);
    if (Object.keys(changes).length === 0 && deletes.length === 0 && reverts.length === 0) {
      throw new SimHttpError(500, 'no options specified');
    }
    const settings = methodSpec('/nodes/{node}/qemu/{vmid}/config', 'PUT')!.parameters;
    for (const key of reverts) {
      if (!paramSpec(settings, key) || CALL_PARAMS.has(key)) throw paramError({ revert: `unknown option '${key}'` });
      if (changes[key] !== undefined) {
        throw paramError({ delete: `you can't use '-${key}' and -revert ${key}' at the same time` });
      }
    }
    for (const key of deletes) {
      if (changes[key] !== undefined) {
        throw paramError({ delete: `you can't use '-${key}' and -delete ${key}' at the same time` });
      }
      if (reverts.includes(key)) {
        throw paramError({ revert: `you can't use '-delete ${key}' and -revert ${key}' at the same time` });
      }
      if (!paramSpec(settings, key) || CALL_PARAMS.has(key)) throw paramError({ delete: `unknown option '${key}'` });
    }
    const vm = access.vm(node, vmid);
    const written = withMacs(state, changes);
    await access.underConfigFlock(vmid, async () => {
      if (params.digest && params.digest !== state.digest(vm)) {
        throw new SimHttpError(500, 'checksum mismatch (file change by other user?)');
      }
      access.checkLockSync(vm);
      for (const key of reverts) {
        delete vm.pending?.[key];
        vm.pendingDelete = vm.pendingDelete?.filter((k) => k !== key);
      }
      for (const key of deletes) {
        if (vm.config[key] === undefined && vm.pending?.[key] === undefined) continue;
        delete vm.pending?.[key];
        vm.pendingDelete = [...new Set([...(vm.pendingDelete ?? []), key])];
      }
      for (const [key, value] of Object.entries(written)) {
        vm.pending = { ...vm.pending, [key]: value };
        vm.pendingDelete = vm.pendingDelete?.filter((k) => k !== key);
      }
      if (sync) applyPending(vm);
    });
    if (sync) return null;
    const upid = access.task(node, 'qmconfig', vmid, user, async () => {
      await access.underConfigFlock(vmid, async () => applyPending(access.vmInTask(node, vmid)));
    });
    if (params.background_delay) {
      // Wait up to background_delay for the task: null when it finished OK, its error when it failed.
      const end = Date.now() + Number(params.background_delay) * 1000;
      while (Date.now() < end && state.tasks.get(upid)!.status === 'running') await sleep(20);
      const task = state.tasks.get(upid)!;
      if (task.status === 'stopped') {
        if (task.exitstatus === 'OK') return null;
        throw new SimHttpError(500, `failed to update VM ${vmid}: ${task.exitstatus}`);
      }
    }
    return upid;
  }

  /** GET pending: config_with_pending_array (pve-guest-common GuestHelpers.pm). */
  function pending({ node, vmid }: RouteContext) {
    const vm = access.vm(node, vmid);
    const value = typedConfig(vm.config);
    const next = typedConfig(vm.pending ?? {});
    const deleting = new Set(vm.pendingDelete ?? []);
    if (value.cipassword !== undefined) value.cipassword = '**********';
    if (next.cipassword !== undefined) next.cipassword = '********** ';
    const rows: Record<string, unknown>[] = Object.keys(value).map((key) => ({
      key,
      value: value[key],
      ...(next[key] !== undefined ? { pending: next[key] } : {}),
      ...(deleting.has(key) ? { delete: 1 } : {}),
    }));
    for (const key of Object.keys(next)) if (value[key] === undefined) rows.push({ key, pending: next[key] });
    for (const key of deleting) if (value[key] === undefined) rows.push({ key, delete: 1 });
    return rows;
  }

  return [
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/config', handler: getConfig },
    { method: 'PUT', path: '/nodes/{node}/qemu/{vmid}/config', handler: (ctx) => update(ctx, true) },
    { method: 'POST', path: '/nodes/{node}/qemu/{vmid}/config', handler: (ctx) => update(ctx, false) },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/pending', handler: pending },
  ];
}
