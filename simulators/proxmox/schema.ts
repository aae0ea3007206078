// Checks request parameters against the official PVE 8.4 schema digest as pve-common's JSONSchema does: the
// same order of checks, property strings parsed by key, and its own per-field messages.
import { readFileSync } from 'node:fs';
import { parsePropertyString, type PropertyFormat, type PropertyKeySpec } from '../../common/property-string';
import { simulatorData } from './data';

export interface ParamSpec extends Omit<PropertyKeySpec, 'format'> {
  format?: string | PropertyFormat;
  minLength?: number;
  /** Another parameter this one needs (`checksum` → `checksum-algorithm`). */
  requires?: string | object;
}
export interface MethodSpec {
  parameters: Record<string, ParamSpec>;
  returns: {
    type?: string;
    properties?: Record<string, ParamSpec>;
    items?: { properties?: Record<string, ParamSpec> };
  };
}
type Schema = { paths: Record<string, Record<string, MethodSpec>> };
/** A decoded form value: repeated keys become a list, as pve-http-server's decode_urlencoded makes them. */
export type ParamValue = string | string[];

/** Methods transcribed from qemu-server beside the apidata.js digest (provenance in each file's `_source`). */
const SUPPLEMENTS = ['move-disk.schema.json'];

let schema: Schema | undefined;
export function loadSchema(): Schema {
  if (!schema) {
    const read = (file: string) => JSON.parse(readFileSync(simulatorData(file), 'utf8')) as Schema;
    const digest = read('pve-8.4-endpoints.compact.json');
    for (const file of SUPPLEMENTS) Object.assign(digest.paths, read(file).paths);
    schema = digest;
  }
  return schema;
}

const ID = /^[a-z][a-z0-9_-]+$/i;
const DNS_LABEL = '[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?';
const volumeId = (v: string) =>
  /^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i.test(v) ? undefined : `unable to parse volume ID '${v}'`;

/** Registered formats (pve-common JSONSchema.pm, qemu-server, pve-storage): their die texts. */
const FORMATS: Record<string, (v: string) => string | undefined> = {
  'pve-vmid': (v) => (/^[1-9][0-9]{2,8}$/.test(v) ? undefined : 'value does not look like a valid VM ID'),
  'pve-node': (v) => (new RegExp(`^${DNS_LABEL}$`).test(v) ? undefined : 'value does not look like a valid node name'),
  'dns-name': (v) =>
    new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`).test(v) ? undefined : 'value does not look like a valid DNS name',
  urlencoded: (v) => (/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v) ? undefined : `invalid urlencoded string: ${v}`),
  'pve-tag-list': (v) => {
    const bad = v.split(/[;, ]/).find((t) => t !== '' && !/^[a-z0-9_][a-z0-9_+.-]*$/i.test(t));
    return bad === undefined ? undefined : `invalid tag '${bad}'`;
  },
  'pve-configid': (v) => (ID.test(v) ? undefined : `invalid configuration ID '${v}'`),
  'pve-configid-list': (v) => {
    const bad = v.split(/[,; ]/).find((k) => k !== '' && !ID.test(k));
    return bad === undefined ? undefined : `invalid configuration ID '${bad}'`;
  },
  'pve-storage-id': (v) =>
    /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`,
  'pve-bridge-id': (v) => (/^[-_.\w]+$/.test(v) ? undefined : `invalid bridge ID '${v}'`),
  'mac-addr': (v) =>
    /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i.test(v)
      ? undefined
      : 'value does not look like a valid unicast MAC address',
  'disk-size': (v) =>
    /^(\d+(\.\d+)?)([KMGT](?:iB)?)?$/.test(v) ? undefined : `value does not look like a valid disk size: ${v}`,
  'pve-volume-id': volumeId,
  'pve-volume-id-or-absolute-path': (v) => (v.startsWith('/') ? undefined : volumeId(v)),
  'pve-volume-id-or-qm-path': (v) => (v === 'none' || v === 'cdrom' || v.startsWith('/') ? undefined : volumeId(v)),
  'pve-storage-content': (v) =>
    ['images', 'rootdir', 'vztmpl', 'iso', 'backup', 'snippets', 'import', 'none'].includes(v)
      ? undefined
      : `invalid content type '${v}'`,
  'pve-task-status-type-list': (v) => {
    const bad = v.split(/[,; ]/).find((s) => s !== '' && !/^(ok|error|warning|unknown)$/i.test(s));
    return bad === undefined ? undefined : `invalid status '${bad}'`;
  },
  'pve-qm-cicustom': (v) => {
    for (const part of v.split(',')) {
      const [key, volume] = part.split('=');
      if (!['meta', 'network', 'user', 'vendor'].includes(key ?? '') || volumeId(volume ?? '')) {
        return `invalid cicustom '${part}'`;
      }
    }
    return undefined;
  },
};

const isNumber = (v: string) => /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v);

/** check_type: `0`/`1` for booleans, digits for integers; a repeated form key is a list, which no type accepts. */
function typeProblem(type: string | undefined, value: ParamValue): string | undefined {
  if (!type || type === 'any') return undefined;
  if (Array.isArray(value)) return `type check ('${type}') failed - got ARRAY`;
  if (type === 'boolean' && value !== '0' && value !== '1') return `type check ('boolean') failed - got '${value}'`;
  if (type === 'integer' && !/^[+-]?\d+$/.test(value)) return `type check ('integer') failed - got '${value}'`;
  if (type === 'number' && !isNumber(value)) return `type check ('number') failed - got '${value}'`;
  return undefined;
}

/** check_format: a named format's die text, or a property string's (`format error` with one line per key). */
function formatProblem(format: ParamSpec['format'], value: string, path: string): string | undefined {
  if (typeof format === 'string') {
    const problem = FORMATS[format]?.(value);
    return problem === undefined ? undefined : `${problem}\n`;
  }
  if (!format) return undefined;
  let parsed: Record<string, string>;
  try {
    parsed = parsePropertyString(value, format);
  } catch (err) {
    return `${(err as Error).message}\n`;
  }
  const errors: Record<string, string> = {};
  for (const [key, spec] of Object.entries(format)) checkProp(spec as ParamSpec, parsed[key], `${path}.${key}`, errors);
  const lines = Object.entries(errors).map(([key, msg]) => `${key}: ${msg}\n`);
  return lines.length > 0 ? `format error\n${lines.join('')}` : undefined;
}

/** check_prop, in pve-common's order: missing, type, format, pattern, lengths, limits, enum. */
function checkProp(spec: ParamSpec, value: ParamValue | undefined, path: string, errors: Record<string, string>): void {
  if (value === undefined) {
    if (!spec.optional && !spec.alias) errors[path] = 'property is missing and it is not optional';
    return;
  }
  const problem = typeProblem(spec.type, value);
  if (problem || Array.isArray(value)) {
    if (problem) errors[path] = problem;
    return;
  }
  const invalid = formatProblem(spec.format, value, path);
  if (invalid !== undefined) errors[path] = `invalid format - ${invalid}`;
  else if (spec.pattern !== undefined && !new RegExp(`^(?:${spec.pattern})$`).test(value)) {
    errors[path] = 'value does not match the regex pattern';
  } else if (spec.maxLength !== undefined && value.length > spec.maxLength) {
    errors[path] = `value may only be ${spec.maxLength} characters long`;
  } else if (spec.minLength !== undefined && value.length < spec.minLength) {
    errors[path] = `value must be at least ${spec.minLength} characters long`;
  } else if (isNumber(value) && spec.maximum !== undefined && Number(value) > Number(spec.maximum)) {
    errors[path] = `value must have a maximum value of ${spec.maximum}`;
  } else if (isNumber(value) && spec.minimum !== undefined && Number(value) < Number(spec.minimum)) {
    errors[path] = `value must have a minimum value of ${spec.minimum}`;
  } else if (spec.enum && !spec.enum.includes(value)) {
    errors[path] = `value '${value}' does not have a value in the enumeration '${spec.enum.join(', ')}'`;
  }
}

/** The schema of one method; `undefined` when the digest does not have it. */
export function methodSpec(pathTemplate: string, method: string): MethodSpec | undefined {
  return loadSchema().paths[pathTemplate]?.[method];
}

/** The spec of a parameter, indexed ones (`net0`) through their `net[n]` entry. */
export function paramSpec(specs: Record<string, ParamSpec>, name: string): ParamSpec | undefined {
  const indexed = name.replace(/\d+$/, '[n]');
  return specs[name] ?? (indexed !== name ? specs[indexed] : undefined);
}

/** Per-field errors in PVE's wording; empty when the request is valid. Includes path parameters. */
export function validateParams(
  pathTemplate: string,
  method: string,
  params: Record<string, ParamValue>,
): Record<string, string> {
  const specs = methodSpec(pathTemplate, method)?.parameters ?? {};
  const errors: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    const spec = paramSpec(specs, name);
    if (!spec) errors[name] = 'property is not defined in schema and the schema does not allow additional properties';
    else checkProp(spec, value, name, errors);
    const requires = spec?.requires;
    if (typeof requires === 'string' && params[requires] === undefined) {
      errors[requires] = `missing property - '${name}' requires this property`;
    }
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (!name.endsWith('[n]') && params[name] === undefined) checkProp(spec, undefined, name, errors);
  }
  return errors;
}
