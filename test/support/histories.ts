// Workflow histories as `temporal workflow show --output json` prints them, with every payload decoded.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import execa from 'execa';
import { temporalCliPath } from '../../common/temporal-server';
import { eventually, temporalAddress } from './stack';

/** Every payload in a history JSON, decoded, next to the raw text: a secret must be in neither. */
export function historyText(raw: string): string {
  const decoded: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    if (typeof record.data === 'string' && record.metadata) {
      decoded.push(Buffer.from(record.data, 'base64').toString('utf8'));
    }
    Object.values(record).forEach(visit);
  };
  visit(JSON.parse(raw));
  return [raw, ...decoded].join('\n');
}

/** Runs Temporal's CLI and returns its stdout (on this machine, or inside a test's network namespace). */
export type TemporalCli = (args: string[]) => Promise<string>;

const localTemporalCli: TemporalCli = async (args) =>
  (await execa(temporalCliPath(), [...args, '--address', temporalAddress()])).stdout;

/** `temporal workflow show --output json` of every workflow the server holds (the test run's, by default). */
export async function dumpAllHistories(cli: TemporalCli = localTemporalCli): Promise<{ count: number; text: string }> {
  const listed = { stdout: await cli(['workflow', 'list', '--output', 'json', '--limit', '100000']) };
  const executions = (JSON.parse(listed.stdout || '[]') as { execution: { workflowId: string; runId: string } }[]).map(
    (w) => w.execution,
  );
  const texts: string[] = [];
  for (let i = 0; i < executions.length; i += 8) {
    const batch = executions.slice(i, i + 8).map(async ({ workflowId, runId }) => {
      const shown = await cli(['workflow', 'show', '--workflow-id', workflowId, '--run-id', runId, '--output', 'json']);
      return historyText(shown);
    });
    texts.push(...(await Promise.all(batch)));
  }
  return { count: executions.length, text: texts.join('\n') };
}

/** One workflow's history JSON (the latest run, or `runId`'s). */
export async function showHistory(workflowId: string, runId?: string): Promise<string> {
  const shown = await execa(temporalCliPath(), [
    ...['workflow', 'show', '--address', temporalAddress(), '--workflow-id', workflowId, '--output', 'json'],
    ...(runId ? ['--run-id', runId] : []),
  ]);
  return shown.stdout;
}

/**
 * Replay fixtures (test/fixtures/histories, checked by replay.test.ts) come from real runs: a suite that makes
 * one calls this, and `AGENTLAB_RECORD_HISTORIES=<dir> npx jest <suite>` writes it there as `<name>.json`.
 */
export async function recordHistoryIfAsked(name: string, workflowId: string, runId?: string): Promise<void> {
  const dir = process.env.AGENTLAB_RECORD_HISTORIES;
  if (dir) writeFileSync(join(dir, `${name}.json`), await showHistory(workflowId, runId));
}

/**
 * Waits for a fact in a workflow's history, never a fixed time: an `activity` it scheduled failed for good (its
 * retries, the server's, all spent), e.g. a teardown's destroyVm before the workflow waits for an operator's --force.
 */
export function activityFailed(client: Client, workflowId: string, activity: string): Promise<true> {
  return eventually(`${workflowId}: ${activity} to fail`, async () => {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const scheduled = new Set(
      events
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity)
        .map((e) => String(e.eventId)),
    );
    return events.some(
      (e) =>
        e.activityTaskFailedEventAttributes &&
        scheduled.has(String(e.activityTaskFailedEventAttributes.scheduledEventId)),
    );
  });
}
