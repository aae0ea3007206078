// Bundles the workflow code once at build time, so workers start fast and tests share one bundle.
import { writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PRELOADED_WORKFLOW_MODULES, WORKFLOW_BUNDLE_PATH } from '../worker/workflow-bundle';

async function run(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: require.resolve('../common/failure-converter'),
    preloadModules: PRELOADED_WORKFLOW_MODULES,
    logger: undefined,
  });
  await mkdir(dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  await writeFile(WORKFLOW_BUNDLE_PATH, code);
  console.error(`workflow bundle written to ${WORKFLOW_BUNDLE_PATH} (${Math.round(code.length / 1024)} KiB)`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
