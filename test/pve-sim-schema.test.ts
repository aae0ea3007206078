// The simulator checks parameters as pve-common's JSONSchema does: property strings parsed by key with its
// wording, a repeated key refused as a list, checks in its order; the digest is the official PVE 8.4 schema.
import { readFileSync } from 'node:fs';
import { simulatorData } from '../simulators/proxmox/data';
import { validateParams } from '../simulators/proxmox/schema';

const config = (params: Record<string, string | string[]>) =>
  validateParams('/nodes/{node}/qemu/{vmid}/config', 'PUT', { node: 'pve', vmid: '101', ...params });

test('property strings: keyed, any order, default keys and aliases', () => {
  expect(config({ agent: 'type=virtio,enabled=1' })).toEqual({});
  expect(config({ agent: '1' })).toEqual({});
  expect(config({ net0: 'bridge=vmbr1,virtio=BC:24:11:00:00:01,firewall=1' })).toEqual({});
  expect(config({ scsi0: 'local-lvm:vm-101-disk-0,size=8G,iothread=1' })).toEqual({});
  expect(config({ memory: 'current=4096' })).toEqual({});
});

test("property-string errors in pve-common's wording", () => {
  expect(config({ agent: 'enabled=1,foo=2' })).toEqual({
    agent: 'invalid format - invalid key in comma-separated list property: foo\n',
  });
  expect(config({ agent: 'enabled=1,enabled=0' })).toEqual({
    agent: 'invalid format - duplicate key in comma-separated list property: enabled\n',
  });
  expect(config({ agent: 'enabled=maybe' })).toEqual({
    agent: "invalid format - format error\nagent.enabled: type check ('boolean') failed - got 'maybe'\n",
  });
  expect(config({ net0: 'bridge=vmbr1' })).toEqual({
    net0: 'invalid format - format error\nnet0.model: property is missing and it is not optional\n',
  });
  expect(config({ net0: 'virtio=01:00:00:00:00:01,bridge=vmbr1' })).toEqual({
    net0: 'invalid format - format error\nnet0.macaddr: invalid format - value does not look like a valid unicast MAC address\n\n',
  });
  expect(config({ memory: 'current=8' })).toEqual({
    memory: 'invalid format - format error\nmemory.current: value must have a minimum value of 16\n',
  });
});

test('a repeated key is a list, which no parameter type accepts', () => {
  expect(config({ cores: ['2', '4'] })).toEqual({ cores: "type check ('integer') failed - got ARRAY" });
  expect(config({ name: ['a', 'b'] })).toEqual({ name: "type check ('string') failed - got ARRAY" });
});

test('the digest is the official schema, with its property-string formats and every path agentlab uses', () => {
  const digest = JSON.parse(readFileSync(simulatorData('pve-8.4-endpoints.compact.json'), 'utf8')) as {
    _source: { commit: string };
    paths: Record<string, Record<string, { parameters: Record<string, { format?: unknown }> }>>;
  };
  expect(digest._source.commit).toBe('ae1bf37ed06b2fab39c9fa28a0e6c18e6435b7de');
  expect(Object.keys(digest.paths)).toHaveLength(35);
  expect(digest.paths['/nodes/{node}/qemu/{vmid}/resize']?.PUT).toBeDefined();
  expect(digest.paths['/nodes/{node}/storage/{storage}/content']?.GET).toBeDefined();
  const agent = digest.paths['/nodes/{node}/qemu/{vmid}/config']!.PUT!.parameters.agent!.format;
  expect(agent).toMatchObject({ enabled: { type: 'boolean', default_key: 1 }, type: { enum: ['virtio', 'isa'] } });
});
