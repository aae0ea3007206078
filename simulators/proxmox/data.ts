// Where the simulator's data lives (data/, copied into this repository; provenance in README.md), from
// the sources under Jest and from dist/ alike: tsc does not copy JSON that no module imports.
import { join } from 'node:path';
import { packageRoot } from '../../common/paths';

export const simulatorData = (file: string): string => join(packageRoot(), 'simulators', 'proxmox', 'data', file);

/** PVE 8.4's API schema digest, cut to the paths of extract-digest.ts. */
export const SCHEMA_FILE = 'pve-8.4-endpoints.compact.json';
