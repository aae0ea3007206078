// Every route the simulator answers, one module per concern; the conformance test walks the schema digest against it.
import type { PowerHooks, Route } from './access';
import { createAgentRoutes } from './agent';
import { createCloneRoutes } from './clone';
import { createCloudInitRoutes } from './cloudinit';
import { createClusterRoutes } from './cluster';
import { createConfigRoutes } from './config';
import { createMoveDiskRoutes } from './move-disk';
import { createPowerRoutes } from './power';
import { createQemuRoutes } from './qemu';
import { createSnapshotRoutes } from './snapshots';
import type { SimState } from './state';
import { createStorageRoutes, type Upload } from './storage-routes';
import { createTaskRoutes } from './task-routes';

export interface RouteOptions {
  hooks: PowerHooks;
  /** The TLS certificate's fingerprint, once listening: GET /nodes reports it. */
  fingerprint: () => string | undefined;
  snippetsDir?: string;
  uploads: Map<string, Upload>;
}

export function createRoutes(state: SimState, options: RouteOptions): Route[] {
  return [
    ...createClusterRoutes(state, options.fingerprint),
    ...createQemuRoutes(state, options.hooks),
    ...createCloneRoutes(state),
    ...createMoveDiskRoutes(state),
    ...createConfigRoutes(state),
    ...createCloudInitRoutes(state),
    ...createPowerRoutes(state, options.hooks),
    ...createAgentRoutes(state),
    ...createSnapshotRoutes(state, options.hooks),
    ...createTaskRoutes(state),
    ...createStorageRoutes(state, { snippetsDir: options.snippetsDir, uploads: options.uploads }),
  ];
}
