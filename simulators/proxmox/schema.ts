// Checks request parameters against the official PVE 8.4 schema digest, with PVE's own per-field messages.
import { readFileSync } from 'node:fs';
import { SCHEMA_FILE, simulatorData } from './data';

interface ParamSpec {
  type?: string;
  format?: string | { 'property-string-keys': string[] };
  enum?: string[];
  minimum?: number | string;
  maximum?: number | string;
  maxLength?: number;
  optional?: number;
}
type MethodSpec = { parameters?: Record<string, ParamSpec> };
type Schema = { paths: Record<string, Record<string, MethodSpec>> };

let schema: Schema | undefined;
export function loadSchema(): Schema {
  schema ??= JSON.parse(readFileSync(simulatorData(SCHEMA_FILE), 'utf8')) as Schema;
  return schema;
}

const FORMATS: Record<string, (v: string) => string | undefined> = {
  'pve-vmid': (v) => (/^[1-9][0-9]{2,8}$/.test(v) ? undefined : 'value does not look like a valid VM ID'),
  'pve-node': (v) =>
    /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(v) ? undefined : 'value does not look like a valid node name',
  'dns-name': (v) =>
    /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/.test(v)
      ? undefined
      : 'value does not look like a valid DNS name',
  urlencoded: (v) => (/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v) ? undefined : `invalid urlencoded string: ${v}`),
  'pve-tag-list': (v) => {
    const bad = v.split(/[;, ]/).find((t) => t !== '' && !/^[a-z0-9_][a-z0-9_+.-]*$/i.test(t));
    return bad === undefined ? undefined : `invalid tag '${bad}'`;
  },
  'pve-configid': (v) => (/^[a-z][a-z0-9_-]+$/i.test(v) ? undefined : `invalid configuration ID '${v}'`),
  'pve-configid-list': (v) => {
    const bad = v.split(/[,; ]/).find((k) => k !== '' && !/^[a-z][a-z0-9_-]+$/i.test(k));
    return bad === undefined ? undefined : `invalid configuration ID '${bad}'`;
  },
  'pve-storage-id': (v) =>
    /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`,
  'pve-qm-cicustom': (v) => {
    for (const part of v.split(',')) {
      const [key, volume] = part.split('=');
      if (
        !['meta', 'network', 'user', 'vendor'].includes(key ?? '') ||
        !/^[a-z][a-z0-9\-_.]*:.+$/i.test(volume ?? '')
      ) {
        return `invalid cicustom '${part}'`;
      }
    }
    return undefined;
  },
};

function checkPropertyString(value: string, keys: string[]): string | undefined {
  const parts = value.split(',');
  for (const [i, part] of parts.entries()) {
    const eq = part.indexOf('=');
    // The first item may be a bare value for the default key (`virtio,bridge=vmbr1`, `1`, `4096`).
    if (eq < 0) {
      if (i === 0) continue;
      return `format error\n${part}: property is not defined in schema`;
    }
    const key = part.slice(0, eq);
    if (!keys.includes(key)) return `format error\n${key}: property is not defined in schema`;
  }
  return undefined;
}

function checkValue(spec: ParamSpec, value: string): string | undefined {
  if (spec.type === 'boolean' && value !== '0' && value !== '1')
    return `type check ('boolean') failed - got '${value}'`;
  if (spec.type === 'integer' || spec.type === 'number') {
    const ok = spec.type === 'integer' ? /^-?\d+$/.test(value) : /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value);
    if (!ok) return `type check ('${spec.type}') failed - got '${value}'`;
    if (spec.minimum !== undefined && Number(value) < Number(spec.minimum)) {
      return `value must have a minimum value of ${spec.minimum}`;
    }
    if (spec.maximum !== undefined && Number(value) > Number(spec.maximum)) {
      return `value must have a maximum value of ${spec.maximum}`;
    }
  }
  if (spec.enum && !spec.enum.includes(value)) {
    return `value '${value}' does not have a value in the enumeration '${spec.enum.join(', ')}'`;
  }
  if (spec.maxLength !== undefined && value.length > spec.maxLength) {
    return `value may only be ${spec.maxLength} characters long`;
  }
  if (typeof spec.format === 'string') {
    const problem = FORMATS[spec.format]?.(value);
    if (problem) return `invalid format - ${problem}\n`;
  } else if (spec.format) {
    const problem = checkPropertyString(value, spec.format['property-string-keys']);
    if (problem) return `invalid format - ${problem}\n`;
  }
  return undefined;
}

/** Per-field errors in PVE's wording; empty when the request is valid. Includes path parameters. */
export function validateParams(
  pathTemplate: string,
  method: string,
  params: Record<string, string>,
): Record<string, string> {
  const spec = loadSchema().paths[pathTemplate]?.[method]?.parameters ?? {};
  const errors: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    const indexed = name.replace(/\d+$/, '[n]');
    const paramSpec = spec[name] ?? (indexed !== name ? spec[indexed] : undefined);
    if (!paramSpec) {
      errors[name] = 'property is not defined in schema and the schema does not allow additional properties';
      continue;
    }
    const problem = checkValue(paramSpec, value);
    if (problem) errors[name] = problem;
  }
  for (const [name, paramSpec] of Object.entries(spec)) {
    if (!paramSpec.optional && !name.endsWith('[n]') && params[name] === undefined) {
      errors[name] = 'property is missing and it is not optional';
    }
  }
  return errors;
}
