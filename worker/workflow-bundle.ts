// Where the worker gets its workflow code: the prebuilt bundle (npm run build) or the sources.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../common/paths';

export const WORKFLOW_BUNDLE_PATH = join(packageRoot(), 'dist', 'workflow-bundle.js');

/**
 * Modules evaluated once in the worker's shared V8 context instead of once per cached workflow
 * (workflows/shared-modules.ts: zod, stateless and ~330 modules, which cost ~1.3 MB of worker RSS per
 * sandbox; docs/benchmarks.md, leases). Only modules without per-workflow state may go there.
 */
export const PRELOADED_WORKFLOW_MODULES = [require.resolve('../workflows/shared-modules')];

export function workflowSource():
  { workflowBundle: { codePath: string } } | { workflowsPath: string; bundlerOptions: { preloadModules: string[] } } {
  if (existsSync(WORKFLOW_BUNDLE_PATH)) return { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } };
  return {
    workflowsPath: require.resolve('../workflows'),
    bundlerOptions: { preloadModules: PRELOADED_WORKFLOW_MODULES },
  };
}
