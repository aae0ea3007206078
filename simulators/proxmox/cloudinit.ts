// Cloud-init endpoints: what changed since the drive was last generated, regenerating it, and the generated
// user, network and meta data (qemu-server API2/Qemu.pm cloudinit_pending/update, QemuServer/Cloudinit.pm).
import { createHash } from 'node:crypto';
import { NET_FORMAT, isCloudInitVolume, parsePropertyString } from '../../common/property-string';
import { Access, type Route, type RouteContext } from './access';
import type { SimState, SimVm } from './state';

const CLOUDINIT_OPTIONS = /^(cicustom|cipassword|citype|ciupgrade|ciuser|nameserver|searchdomain|sshkeys|ipconfig\d+)$/;

/** vmconfig_update_cloudinit_drive: a VM with a cloud-init drive gets a fresh ISO, and the record starts over. */
export function regenerateCloudInit(vm: SimVm): boolean {
  const hasDrive = Object.entries(vm.config).some(
    ([key, value]) => /^(ide|sata|scsi|virtio)\d+$/.test(key) && isCloudInitVolume(String(value).split(',')[0]),
  );
  if (hasDrive) delete vm.cloudinit;
  return hasDrive;
}

function userData(vm: SimVm): string {
  const c = vm.config;
  let host = String(c.name ?? `VM${vm.vmid}`);
  let fqdn = host;
  if (host.includes('.')) host = host.replace(/\..*$/, '');
  else if (c.searchdomain) fqdn = `${host}.${String(c.searchdomain)}`;
  let text = `#cloud-config\nhostname: ${host}\nmanage_etc_hosts: true\nfqdn: ${fqdn}\n`;
  if (c.ciuser !== undefined) text += `user: ${String(c.ciuser)}\n`;
  if (c.ciuser === 'root') text += 'disable_root: False\n';
  if (c.cipassword !== undefined) text += `password: ${String(c.cipassword)}\n`;
  if (c.sshkeys !== undefined) {
    const keys = decodeURIComponent(String(c.sshkeys))
      .split('\n')
      .filter((k) => /\S/.test(k));
    text += 'ssh_authorized_keys:\n' + keys.map((k) => `  - ${k}\n`).join('');
  }
  text += 'chpasswd:\n  expire: False\n';
  if (c.ciuser !== 'root') text += 'users:\n  - default\n';
  if (c.ciupgrade === undefined || String(c.ciupgrade) !== '0') text += 'package_upgrade: true\n';
  return text;
}

/** nocloud_network: one entry per NIC that has an ipconfig (DHCP or a static IPv4 here). */
function networkData(vm: SimVm): string {
  let text = 'version: 1\nconfig:\n';
  for (const key of Object.keys(vm.config)
    .filter((k) => /^net\d+$/.test(k))
    .sort()) {
    const id = key.slice(3);
    const ipconfig = vm.config[`ipconfig${id}`];
    if (ipconfig === undefined) continue;
    const mac = String(parsePropertyString(String(vm.config[key]), NET_FORMAT).macaddr ?? '').toLowerCase();
    text += `    - type: physical\n      name: eth${id}\n      mac_address: '${mac}'\n      subnets:\n`;
    const ip = /(?:^|,)ip=([^,]+)/.exec(String(ipconfig))?.[1];
    if (ip === 'dhcp') text += '      - type: dhcp4\n';
    else if (ip) {
      const [address, bits] = ip.split('/');
      const mask = bits === undefined ? '' : prefixToMask(Number(bits));
      const gw = /(?:^|,)gw=([^,]+)/.exec(String(ipconfig))?.[1];
      text += `      - type: static\n        address: '${address}'\n        netmask: '${mask}'\n`;
      if (gw) text += `        gateway: '${gw}'\n`;
    }
  }
  return text;
}

const prefixToMask = (bits: number) =>
  [0, 1, 2, 3].map((i) => (0xff << (8 - Math.max(0, Math.min(8, bits - 8 * i)))) & 0xff).join('.');

export function createCloudInitRoutes(state: SimState): Route[] {
  const access = new Access(state);

  /** cloudinit_pending: added values, changed ones (value = what the drive has, pending = the config's), deleted ones. */
  function changes({ node, vmid }: RouteContext) {
    const vm = access.vm(node, vmid);
    const recorded = { ...(vm.cloudinit?.recorded ?? {}) };
    const added = vm.cloudinit?.added ?? [];
    const config = { ...vm.config };
    if (config.cipassword !== undefined) config.cipassword = '**********';
    if (recorded.cipassword !== undefined) recorded.cipassword = '**********';
    const rows: Record<string, unknown>[] = added.map((key) => ({ key, pending: config[key] }));
    for (const key of Object.keys(config).filter((k) => CLOUDINIT_OPTIONS.test(k) && !added.includes(k))) {
      if (!config[key]) continue;
      rows.push(
        recorded[key] !== undefined ? { key, value: recorded[key], pending: config[key] } : { key, value: config[key] },
      );
    }
    for (const key of Object.keys(recorded)) if (!config[key]) rows.push({ key, delete: 1 });
    return rows;
  }

  async function regenerate({ node, vmid }: RouteContext): Promise<null> {
    const vm = access.vm(node, vmid);
    await access.underConfigFlock(vmid, async () => {
      access.checkLockSync(vm);
      regenerateCloudInit(vm);
    });
    return null;
  }

  function dump({ node, vmid, params }: RouteContext): string {
    const vm = access.vm(node, vmid);
    const user = userData(vm);
    const network = networkData(vm);
    if (params.type === 'user') return user;
    if (params.type === 'network') return network;
    return `instance-id: ${createHash('sha1')
      .update(user + network)
      .digest('hex')}\n`;
  }

  return [
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/cloudinit', handler: changes },
    { method: 'PUT', path: '/nodes/{node}/qemu/{vmid}/cloudinit', handler: regenerate },
    { method: 'GET', path: '/nodes/{node}/qemu/{vmid}/cloudinit/dump', handler: dump },
  ];
}
