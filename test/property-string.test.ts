// Property strings are read by key, as pve-common does: default keys, key aliases, booleans, and its error texts.
import {
  AGENT_FORMAT,
  DRIVE_FORMAT,
  isCloudInitVolume,
  NET_FORMAT,
  parsePropertyString,
  printPropertyString,
} from '../common/property-string';

describe('parsePropertyString', () => {
  test('agent: the enabled key wherever it stands, bare or named, in any boolean spelling', () => {
    for (const value of [
      '1',
      'enabled=1',
      'type=virtio,enabled=1',
      'enabled=yes,type=isa',
      'on,fstrim_cloned_disks=1',
    ]) {
      expect({ value, enabled: parsePropertyString(value, AGENT_FORMAT).enabled }).toEqual({ value, enabled: '1' });
    }
    expect(parsePropertyString('type=virtio', AGENT_FORMAT).enabled).toBeUndefined();
    expect(parsePropertyString('0,type=virtio', AGENT_FORMAT)).toEqual({ enabled: '0', type: 'virtio' });
  });

  test('net: a model key carries the MAC (keyAlias), a bare model is the default key', () => {
    expect(parsePropertyString('virtio=BC:24:11:AA:BB:CC,bridge=vmbr1,firewall=1', NET_FORMAT)).toEqual({
      model: 'virtio',
      macaddr: 'BC:24:11:AA:BB:CC',
      bridge: 'vmbr1',
      firewall: '1',
    });
    expect(parsePropertyString('bridge=vmbr1,e1000', NET_FORMAT)).toEqual({ model: 'e1000', bridge: 'vmbr1' });
  });

  test("refusals use pve-common's wording", () => {
    const refusal = (value: string, format = AGENT_FORMAT) => {
      try {
        parsePropertyString(value, format);
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(refusal('enabled=1,foo=2')).toBe('invalid key in comma-separated list property: foo');
    expect(refusal('enabled=1,enabled=0')).toBe('duplicate key in comma-separated list property: enabled');
    expect(refusal('1,0')).toBe('duplicate key in comma-separated list property: enabled');
    expect(refusal('=1')).toBe('missing key in comma-separated list property');
    expect(refusal('virtio=BC:24:11:00:00:01,e1000=BC:24:11:00:00:02', NET_FORMAT)).toBe(
      "key alias 'model' is already defined",
    );
    expect(refusal('x', { a: { type: 'string' } })).toBe('value without key, but schema does not define a default key');
  });

  test('lenient reading keeps keys a newer Proxmox may add', () => {
    expect(parsePropertyString('local-lvm:vm-1-disk-0,size=8G,iothread=1', DRIVE_FORMAT, { lenient: true })).toEqual({
      file: 'local-lvm:vm-1-disk-0',
      size: '8G',
      iothread: '1',
    });
  });
});

describe('printPropertyString', () => {
  test('prints as Proxmox stores it: model=mac first, then the rest sorted; round-trips', () => {
    const net = { bridge: 'vmbr1', model: 'virtio', macaddr: 'BC:24:11:AA:BB:CC', firewall: '1' };
    const text = printPropertyString(net, NET_FORMAT);
    expect(text).toBe('virtio=BC:24:11:AA:BB:CC,bridge=vmbr1,firewall=1');
    expect(parsePropertyString(text, NET_FORMAT)).toEqual(net);
    expect(printPropertyString({ enabled: '1', type: 'virtio' }, AGENT_FORMAT)).toBe('1,type=virtio');
  });
});

test("cloud-init volumes as qemu-server's drive_is_cloudinit sees them", () => {
  for (const file of ['local-lvm:vm-9000-cloudinit', 'local:9000/vm-9000-cloudinit.qcow2', 'local-lvm:cloudinit']) {
    expect({ file, cloudinit: isCloudInitVolume(file) }).toEqual({ file, cloudinit: true });
  }
  expect(isCloudInitVolume('local-lvm:base-9000-disk-0')).toBe(false);
  expect(isCloudInitVolume('local-lvm:vm-9000-cloudinit-backup')).toBe(false);
});
