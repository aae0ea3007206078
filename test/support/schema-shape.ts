// Checks an API answer against the `returns` schema of the simulator's PVE 8.4 digest: types, and every key the
// schema does not mark optional. Proxmox sends booleans as 0/1 and some integers as strings (nextid), so those pass.
interface ReturnSpec {
  type?: string;
  optional?: number;
  properties?: Record<string, ReturnSpec>;
  items?: ReturnSpec;
  enum?: string[];
}

export function shapeProblems(value: unknown, spec: ReturnSpec | undefined, path = 'data'): string[] {
  if (!spec?.type) return [];
  if (value === null || value === undefined) {
    return spec.type === 'null' || spec.optional ? [] : [`${path}: missing`];
  }
  const problems: string[] = [];
  const kind = Array.isArray(value) ? 'array' : typeof value;
  const ok: Record<string, boolean> = {
    string: kind === 'string',
    integer: Number.isInteger(value) || (kind === 'string' && /^\d+$/.test(value as string)),
    number: kind === 'number',
    boolean: value === 0 || value === 1 || kind === 'boolean',
    array: kind === 'array',
    object: kind === 'object',
    null: false,
  };
  if (ok[spec.type] === false) return [`${path}: expected ${spec.type}, got ${JSON.stringify(value)}`];
  if (spec.enum && !spec.enum.includes(String(value)))
    problems.push(`${path}: ${String(value)} not in ${spec.enum.join('|')}`);
  if (kind === 'array')
    (value as unknown[]).forEach((v, i) => problems.push(...shapeProblems(v, spec.items, `${path}[${i}]`)));
  if (kind === 'object' && spec.properties) {
    const object = value as Record<string, unknown>;
    for (const [key, sub] of Object.entries(spec.properties)) {
      if (object[key] === undefined && !sub.optional) problems.push(`${path}.${key}: missing`);
      else if (object[key] !== undefined) problems.push(...shapeProblems(object[key], sub, `${path}.${key}`));
    }
  }
  return problems;
}
