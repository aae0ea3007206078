// Stops the shared Temporal dev server and removes the run's workflow bundle.
import { rmSync } from 'node:fs';
import { BUNDLE_DIR_ENV } from './workflow-bundle';

export default async function globalTeardown(): Promise<void> {
  await globalThis.agentlabTestEnv?.teardown();
  const bundleDir = process.env[BUNDLE_DIR_ENV];
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
}
