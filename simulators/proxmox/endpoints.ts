// The endpoints whose schema the simulator carries in data/: those it serves, and those of the qm commands
// scripts/create_template.sh prints (test/deployment.test.ts checks them against the schema; nothing serves them).
import type { Route } from './qemu';
import { PveSim } from './server';

export type Endpoint = Pick<Route, 'method' | 'path'>;

/** `qm <verb>` is a POST to this path on the node's API (qm is a CLI over the same handlers). */
export const QM_COMMAND_PATHS = {
  create: '/nodes/{node}/qemu',
  set: '/nodes/{node}/qemu/{vmid}/config',
  template: '/nodes/{node}/qemu/{vmid}/template',
} as const;

/** Sorted by path, then method, so the list (and the subset cut from it) does not depend on route order. */
export function schemaEndpoints(): Endpoint[] {
  const qm = Object.values(QM_COMMAND_PATHS).map((path): Endpoint => ({ method: 'POST', path }));
  const all = [...new PveSim().endpoints, ...qm];
  const unique = new Map(all.map((e) => [`${e.path} ${e.method}`, e]));
  return [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}
