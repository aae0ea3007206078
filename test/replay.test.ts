// Replays committed workflow histories against the workflow sources as they are now (bundled here, not
// the build's bundle, so an edit without a rebuild is still caught): catches non-determinism.
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRELOADED_WORKFLOW_MODULES } from '../worker/workflow-bundle';

Runtime.install({ logger: new DefaultLogger('WARN') });

const HISTORIES = join(__dirname, 'fixtures', 'histories');

describe('replay of recorded histories', () => {
  const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));
  let workflowBundle: WorkflowBundle;

  beforeAll(async () => {
    workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      failureConverterPath: require.resolve('../common/failure-converter'),
      preloadModules: PRELOADED_WORKFLOW_MODULES,
      logger: new DefaultLogger('WARN'),
    });
  });

  const replay = (history: unknown, name: string) => Worker.runReplayHistory({ workflowBundle }, history, name);

  test('there are recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  test.each(files)('%s replays without non-determinism', async (file) => {
    const history = JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')) as unknown;
    await expect(replay(history, file.replace(/\.json$/, ''))).resolves.toBeUndefined();
  });

  test('negative control: a history whose commands no longer match the code fails to replay', async () => {
    const history = JSON.parse(readFileSync(join(HISTORIES, 'job-recorded.json'), 'utf8')) as {
      events: { activityTaskScheduledEventAttributes?: { activityType: { name: string } } }[];
    };
    const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType.name = 'anActivityTheCodeNeverSchedules';
    await expect(replay(history, 'job-altered')).rejects.toThrow(/[Nn]ondetermin|[Dd]etermin/);
  });
});
