// The workflow code as the sources are now (never dist's build), bundled once per test run: replay and the
// in-process workflow tests share it, so an edit to a workflow source is tested without a rebuild.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundle } from '@temporalio/worker';
import { packageRoot } from '../../common/paths';
import { PRELOADED_WORKFLOW_MODULES, WORKFLOW_BUNDLE_PATH } from '../../worker/workflow-bundle';

/** Set by global setup: a directory that lives as long as the run; the first file that needs the bundle fills it. */
export const BUNDLE_DIR_ENV = 'AGENTLAB_TEST_BUNDLE_DIR';

let cached: Promise<WorkflowBundle> | undefined;

export function sourceWorkflowBundle(): Promise<WorkflowBundle> {
  cached ??= load();
  return cached;
}

async function load(): Promise<WorkflowBundle> {
  const dir = process.env[BUNDLE_DIR_ENV];
  const path = dir && join(dir, 'workflow-bundle.js');
  if (path && existsSync(path)) return { code: readFileSync(path, 'utf8') };
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    failureConverterPath: require.resolve('../../common/failure-converter'),
    preloadModules: PRELOADED_WORKFLOW_MODULES,
    logger: new DefaultLogger('WARN'),
  });
  if (dir && path) {
    // Renamed into place: a parallel Jest worker reads a whole bundle or none.
    mkdirSync(dir, { recursive: true });
    const partial = `${path}.${process.pid}`;
    writeFileSync(partial, code);
    renameSync(partial, path);
  }
  return { code };
}

/**
 * The sources of the build's bundle (dist/workflow-bundle.js, which every spawned worker runs) edited since it was
 * built. Webpack names each module by its path, e.g. "./dist/workflows/job-workflow.js": its source is the .ts.
 */
export function staleBuiltBundleSources(bundlePath = WORKFLOW_BUNDLE_PATH): string[] {
  if (!existsSync(bundlePath)) return [];
  const built = statSync(bundlePath).mtimeMs;
  const modules = new Set(readFileSync(bundlePath, 'utf8').match(/"\.\/dist\/[\w./-]+\.js"/g) ?? []);
  return [...modules]
    .map((id) => id.slice('"./dist/'.length, -'.js"'.length) + '.ts')
    .filter((source) => {
      const path = join(packageRoot(), source);
      return existsSync(path) && statSync(path).mtimeMs > built;
    })
    .sort();
}
