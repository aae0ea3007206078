// Starts ONE real Temporal dev server for the whole test run, with agentlab's search attributes and
// its Web UI (test/web-ui.test.ts drives it in headless Chromium).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { installAgents } from '../../common/agent-tools';
import { parseConfig } from '../../common/config';
import { ALL_SEARCH_ATTRIBUTES } from '../../common/contract';
import { temporalCliPath } from '../../common/temporal-server';
import { freePort } from './stack';
import { BUNDLE_DIR_ENV, staleBuiltBundleSources } from './workflow-bundle';

declare global {
  var agentlabTestEnv: TestWorkflowEnvironment | undefined;
}

export default async function globalSetup(): Promise<void> {
  // Jest's Node is every spawned worker's, CLI's and sandbox runner's (process.execPath): say which it is.
  console.log(`\nthe suite runs under Node ${process.version} (${process.execPath})`);
  const expected = process.env.AGENTLAB_TEST_NODE_VERSION; // set by bench/with-node24.sh
  if (expected && expected !== process.version) {
    throw new Error(`expected to run under Node ${expected}, found ${process.version} at ${process.execPath}`);
  }
  // The real agent CLIs, pinned, in the default tools directory: once per machine, then instant.
  const started = Date.now();
  if (await installAgents(parseConfig({}, 'embedded defaults', {}).agents.dir)) {
    console.log(`installed the agent CLIs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  // Spawned workers run the build's bundle: an edit since the build would go untested by every end-to-end suite.
  const stale = staleBuiltBundleSources();
  if (stale.length > 0) {
    throw new Error(`dist/workflow-bundle.js is older than ${stale.join(', ')}: run \`npm run build\` first`);
  }
  // The first test file that needs the workflow bundle (replay, the in-process worker) builds it there; the rest
  // read it: one bundle from the sources per run (global teardown removes the directory).
  process.env[BUNDLE_DIR_ENV] = mkdtempSync(join(tmpdir(), 'agentlab-bundle-'));
  let lastError: unknown;
  // The SDK gives the server 5 s to come up; a loaded 2-core CI machine occasionally needs a second try.
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const uiPort = await freePort();
      const env = await TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: temporalCliPath() },
          searchAttributes: ALL_SEARCH_ATTRIBUTES,
          log: { format: 'pretty', level: 'warn' },
          ui: true,
          uiPort,
          // No request to the Internet for the UI's newsfeed.
          extraArgs: ['--ui-disable-news-fetch'],
        },
      });
      globalThis.agentlabTestEnv = env;
      process.env.AGENTLAB_TEST_TEMPORAL_ADDRESS = env.connection.options.address;
      process.env.AGENTLAB_TEST_TEMPORAL_UI = `http://127.0.0.1:${uiPort}`;
      return;
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
