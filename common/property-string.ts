// Proxmox property strings (`virtio=BC:24:11:…,bridge=vmbr1`, `type=virtio,enabled=1`), keyed as pve-common's
// parse_property_string and print_property_string read and write them: one parser for the backend and simulator.

/** One key of a property-string format, as the API schema describes it (`format` of agent, net[n], scsi[n]…). */
export interface PropertyKeySpec {
  type?: string;
  optional?: number;
  /** The key a bare value (`virtio`, `1`, `local-lvm:vm-1-disk-0`) belongs to. */
  default_key?: number;
  /** `virtio=<mac>`: the key is a value of `keyAlias` (model) and its value belongs to `alias` (macaddr). */
  alias?: string;
  keyAlias?: string;
  enum?: string[];
  format?: unknown;
  minimum?: number | string;
  maximum?: number | string;
  maxLength?: number;
  pattern?: string;
  default?: unknown;
}
export type PropertyFormat = Record<string, PropertyKeySpec>;
export type PropertyValues = Record<string, string>;

/** pve-common's die texts, so a caller can show Proxmox's own words. */
export class PropertyStringError extends Error {
  override name = 'PropertyStringError';
}

/** pve-common parse_boolean: what a boolean key accepts, normalised to 1/0 as Proxmox stores it. */
export function parseBoolean(value: string): '1' | '0' | undefined {
  if (/^(1|on|yes|true)$/i.test(value)) return '1';
  if (/^(0|off|no|false)$/i.test(value)) return '0';
  return undefined;
}

const defaultKeyOf = (format: PropertyFormat) => Object.keys(format).find((key) => format[key]!.default_key);

/**
 * Keys are read by name, never by position. `lenient` keeps keys the format does not know (a config written
 * by a newer Proxmox); strict parsing refuses them as the API does.
 */
export function parsePropertyString(
  value: string,
  format: PropertyFormat,
  options: { lenient?: boolean } = {},
): PropertyValues {
  const result: PropertyValues = {};
  let defaultKey: string | undefined;
  for (const part of value.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const pair = /^([^=]+)=(.+)$/s.exec(part);
    if (pair) {
      let key = pair[1]!;
      let text = pair[2]!;
      if (result[key] !== undefined)
        throw new PropertyStringError(`duplicate key in comma-separated list property: ${key}`);
      let spec = format[key];
      if (spec?.alias) {
        if (spec.keyAlias) {
          if (result[spec.keyAlias] !== undefined) {
            throw new PropertyStringError(`key alias '${spec.keyAlias}' is already defined`);
          }
          result[spec.keyAlias] = key;
        }
        key = spec.alias;
        spec = format[key];
      }
      if (!spec && !options.lenient)
        throw new PropertyStringError(`invalid key in comma-separated list property: ${key}`);
      if (spec?.type === 'boolean') text = parseBoolean(text) ?? text;
      result[key] = text;
    } else if (!part.includes('=')) {
      if (defaultKey !== undefined) {
        throw new PropertyStringError(`duplicate key in comma-separated list property: ${defaultKey}`);
      }
      defaultKey = defaultKeyOf(format);
      if (defaultKey === undefined) {
        throw new PropertyStringError('value without key, but schema does not define a default key');
      }
      if (result[defaultKey] !== undefined) {
        throw new PropertyStringError(`duplicate key in comma-separated list property: ${defaultKey}`);
      }
      result[defaultKey] = format[defaultKey]!.type === 'boolean' ? (parseBoolean(part) ?? part) : part;
    } else {
      throw new PropertyStringError('missing key in comma-separated list property');
    }
  }
  return result;
}

/** The string Proxmox stores: the default key bare (joined with its key alias: `virtio=<mac>`), then required, then the rest, sorted. */
export function printPropertyString(values: PropertyValues, format: PropertyFormat): string {
  const defaultKey = defaultKeyOf(format);
  const combined = new Map<string, string>();
  for (const spec of Object.values(format)) if (spec.alias && spec.keyAlias) combined.set(spec.keyAlias, spec.alias);
  const done = new Set<string>();
  const parts: string[] = [];
  const add = (key: string, bare: boolean) => {
    if (done.has(key) || values[key] === undefined) return;
    done.add(key);
    const value = values[key]!;
    if (value.includes(',')) throw new PropertyStringError(`illegal value with commas for ${key}`);
    const partner = combined.get(key);
    if (partner !== undefined && values[partner] !== undefined) {
      done.add(partner);
      parts.push(`${value}=${values[partner]}`);
    } else parts.push(bare ? value : `${key}=${value}`);
  };
  if (defaultKey !== undefined) add(defaultKey, true);
  const sorted = Object.keys(values).sort();
  for (const key of sorted) if (format[key] && !format[key].optional) add(key, false);
  for (const key of sorted) add(key, false);
  return parts.join(',');
}

/** The formats agentlab itself reads and writes (from PVE 8.4's schema): keyed, so `type=virtio,enabled=1` is `enabled`. */
export const AGENT_FORMAT: PropertyFormat = {
  enabled: { type: 'boolean', default_key: 1, default: 0 },
  'freeze-fs-on-backup': { type: 'boolean', optional: 1 },
  fstrim_cloned_disks: { type: 'boolean', optional: 1 },
  type: { type: 'string', optional: 1, enum: ['virtio', 'isa'] },
};

const NIC_MODELS = [
  'e1000',
  'e1000-82540em',
  'e1000-82544gc',
  'e1000-82545em',
  'e1000e',
  'i82551',
  'i82557b',
  'i82559er',
  'ne2k_isa',
  'ne2k_pci',
  'pcnet',
  'rtl8139',
  'virtio',
  'vmxnet3',
];
export const NET_FORMAT: PropertyFormat = {
  model: { type: 'string', default_key: 1, enum: NIC_MODELS },
  macaddr: { type: 'string', optional: 1 },
  bridge: { type: 'string', optional: 1 },
  firewall: { type: 'boolean', optional: 1 },
  link_down: { type: 'boolean', optional: 1 },
  mtu: { type: 'integer', optional: 1 },
  queues: { type: 'integer', optional: 1 },
  rate: { type: 'number', optional: 1 },
  tag: { type: 'integer', optional: 1 },
  trunks: { type: 'string', optional: 1 },
  ...Object.fromEntries(NIC_MODELS.map((m) => [m, { alias: 'macaddr', keyAlias: 'model' }])),
};

/** A drive's volume is its default key `file`; agentlab reads only that and `media` (read leniently). */
export const DRIVE_FORMAT: PropertyFormat = {
  file: { type: 'string', default_key: 1 },
  media: { type: 'string', optional: 1, enum: ['cdrom', 'disk'] },
};

/** qemu-server's drive_is_cloudinit (Drive.pm), including the `local-lvm:cloudinit` of a drive still to allocate. */
export const isCloudInitVolume = (file: string | undefined): boolean =>
  /[:/](?:vm-\d+-)?cloudinit(?:\.(raw|qcow|qcow2|qed|vmdk|cloop))?$/.test(file ?? '');
