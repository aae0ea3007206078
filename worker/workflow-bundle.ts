// Where the worker gets its workflow code: the prebuilt bundle (npm run build) or the sources.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../common/paths';

export const WORKFLOW_BUNDLE_PATH = join(packageRoot(), 'dist', 'workflow-bundle.js');

export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  if (existsSync(WORKFLOW_BUNDLE_PATH)) return { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } };
  return { workflowsPath: require.resolve('../workflows') };
}
