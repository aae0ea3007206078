// Replays committed workflow histories against the workflow sources as they are now (the run's bundle of the
// sources, test/support/workflow-bundle.ts, never the build's: an edit without a rebuild is still caught), and
// proves the check can fail: a history altered so that the code no longer matches it must not replay.
import { DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sourceWorkflowBundle } from './support/workflow-bundle';

Runtime.install({ logger: new DefaultLogger('WARN') });

const HISTORIES = join(__dirname, 'fixtures', 'histories');

interface HistoryJson {
  events: {
    eventId: string;
    eventType: string;
    activityTaskScheduledEventAttributes?: { activityType: { name: string } };
    timerStartedEventAttributes?: { timerId: string };
  }[];
}

describe('replay of recorded histories', () => {
  const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));
  const load = (file: string) => JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')) as HistoryJson;
  let workflowBundle: WorkflowBundle;

  beforeAll(async () => {
    workflowBundle = await sourceWorkflowBundle();
  });

  const replay = (history: unknown, name: string) => Worker.runReplayHistory({ workflowBundle }, history, name);

  test('there are recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  test.each(files)('%s replays without non-determinism', async (file) => {
    await expect(replay(load(file), file.replace(/\.json$/, ''))).resolves.toBeUndefined();
  });

  test('negative control: an activity the code does not schedule there is a determinism error', async () => {
    const history = load('job-recorded.json');
    const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType.name = 'anActivityTheCodeNeverSchedules';
    await expect(replay(history, 'job-altered-activity')).rejects.toBeInstanceOf(DeterminismViolationError);
  });

  test('negative control: a timer started before the activity the code schedules first is a determinism error', async () => {
    const history = load('sbx-recorded.json');
    // The lease timer and the allocateVmid scheduled in the same workflow task: swapped, ids kept in order.
    const i = history.events.findIndex((e) => e.timerStartedEventAttributes);
    const [scheduled, timer] = [history.events[i - 1]!, history.events[i]!];
    expect(scheduled.activityTaskScheduledEventAttributes?.activityType.name).toBe('allocateVmid');
    history.events[i - 1] = { ...timer, eventId: scheduled.eventId };
    history.events[i] = { ...scheduled, eventId: timer.eventId };
    await expect(replay(history, 'sbx-altered-timer')).rejects.toBeInstanceOf(DeterminismViolationError);
  });
});
