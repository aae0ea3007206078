// Delivering the outcome: report.json and changes.patch, the whole log, then the result.
import * as fs from 'node:fs';
import type { JobResult } from '../common/contract';
import type { JobApi } from './host-api';
import { errorMessage, log, appendRunnerLine } from './log';
import type { Heartbeat, LogShipper } from './log-shipper';
import type { StateFiles } from './options';
import { patchRedactionSummary, redactText } from './redaction';
import type { Outcome } from './state';
import { writeFileAtomic } from './files';

/**
 * Artifacts, then the whole log, then the result: once the host has the result it has everything.
 * A delivery failure turns the result into FAILED with the reason, if the host can still hear it.
 */
export async function deliver(
  files: StateFiles,
  api: JobApi,
  shipper: LogShipper,
  heartbeat: Heartbeat,
  outcome: Outcome,
): Promise<void> {
  heartbeat.set('uploading');
  const patchRedactions = outcome.patchRedactions || 0;
  const patchFilesWithheld = outcome.patchFilesWithheld || [];
  // The operator sees the message in `job show`: a patch that will not apply as is must say so there.
  const message = redactText(
    patchRedactions > 0 || patchFilesWithheld.length > 0
      ? `${outcome.message}; ${patchRedactionSummary(patchRedactions, patchFilesWithheld.length)}`
      : outcome.message,
  );
  let result: JobResult = { status: outcome.status, exitCode: outcome.exitCode, message };
  const fail = (message: string): void => {
    log('error', message);
    appendRunnerLine(files.log, message);
    result = { status: 'FAILED', exitCode: null, message };
  };

  writeFileAtomic(
    files.report,
    JSON.stringify(
      {
        status: outcome.status,
        exitCode: outcome.exitCode,
        durationSeconds: outcome.durationSeconds,
        baseCommit: outcome.baseCommit,
        headCommit: outcome.headCommit,
        message,
        patchRedactions,
        patchFilesWithheld,
        agent: outcome.agent || null,
      },
      null,
      2,
    ) + '\n',
    0o644,
  );
  try {
    await api.putArtifact('report.json', fs.readFileSync(files.report));
    if (outcome.headCommit && fs.existsSync(files.patch))
      await api.putArtifact('changes.patch', fs.readFileSync(files.patch));
  } catch (err) {
    fail(`uploading artifacts failed: ${errorMessage(err)}`);
  }
  try {
    await shipper.flush();
    await api.putArtifact('agent.log', fs.readFileSync(files.log));
  } catch (err) {
    fail(`uploading the log failed: ${errorMessage(err)}`);
    await shipper.flush().catch(() => undefined); // so the reason is in the host's copy too, if it can be
  }

  heartbeat.set('reporting');
  const accepted = await api.postResult(result);
  if (!accepted) log('warn', 'the host says the job is already finished');
  writeFileAtomic(files.reported, new Date().toISOString() + '\n', 0o644);
  log('info', 'result reported', { status: result.status, exitCode: result.exitCode });
}
