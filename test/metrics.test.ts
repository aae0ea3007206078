// The worker's Prometheus endpoint: agentlab's series after real jobs, next to the SDK runtime's.
import { createExampleRepo } from '../common/example-repo';
import { SCRIPTED_AGENT, TestStack } from './support/stack';

/** The value of one sample line, e.g. `agentlab_job_status_total{status="COMPLETED"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('worker metrics', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  test('after a completed and a failed job, the agentlab series count them', async () => {
    const repo = await createExampleRepo(stack.home);
    const ok = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'x',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      'job-metrics-ok',
    ]);
    expect(ok.code).toBe(0);
    const failed = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'x',
      '--agent-command',
      `SCRIPTED_AGENT_EXIT=3 ${SCRIPTED_AGENT}`,
      '--id',
      'job-metrics-failed',
    ]);
    expect(failed.code).toBe(1);

    const text = await (await fetch(`http://127.0.0.1:${stack.metricsPort}/metrics`)).text();
    expect(sample(text, 'agentlab_job_status_total{status="COMPLETED"}')).toBe(1);
    expect(sample(text, 'agentlab_job_status_total{status="FAILED"}')).toBe(1);
    expect(sample(text, 'agentlab_sandbox_transitions_total{from="REQUESTED",to="PROVISIONING"}')).toBe(2);
    expect(sample(text, 'agentlab_sandbox_transitions_total{from="RUNNING",to="DESTROYED"}')).toBe(2);
    expect(sample(text, 'agentlab_sandbox_provision_duration_seconds_count')).toBe(2);
    expect(sample(text, 'agentlab_sandbox_time_to_ready_seconds_count')).toBe(2);
    expect(sample(text, 'agentlab_job_duration_seconds_count')).toBe(2);
    expect(sample(text, 'agentlab_job_duration_seconds_sum')).toBeGreaterThan(0);
    // The SDK runtime's own series come through the same endpoint.
    expect(text).toMatch(/^temporal_\w+/m);
  });
});
