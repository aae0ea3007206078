#!/usr/bin/env node
// agent-runner: inside a sandbox, claims its job, clones the repo, runs the agent, ships log, artifacts and result
// (runner.ts). Compiled to dist/guest/*.js with Node builtins only (the sandbox template has Node for the
// agents anyway); this entry is what guest/agent-runner.service and the local backend start.
import { PermanentError } from './errors';
import { errorMessage, log } from './log';
import { parseArgs, type RunnerOptions } from './options';
import { redactStream } from './redact-stream';
import { Runner } from './runner';
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const IDLE_RETRY_MS = 10_000;

/** `--redact VALUES_FILE`: the filter between the agent and its log (see agent-process.ts REDACTING_AGENT_WRAPPER). */
async function redactMain(valuesFile: string): Promise<void> {
  // The values file may be wiped while the agent still runs; what we read at start is what counts.
  const values: unknown = JSON.parse(fs.readFileSync(valuesFile, 'utf8'));
  process.on('SIGTERM', () => process.exit(0));
  await redactStream(Array.isArray(values) ? values.map(String) : [], process.stdin, process.stdout);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--redact') return redactMain(process.argv[3]!);
  let options: RunnerOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    log('error', errorMessage(err));
    process.exit(2);
  }
  // The sandbox is powered off with SIGTERM; every step is resumable from the state dir.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log('info', 'stopping', { signal });
      process.exit(0);
    });
  }
  const runner = new Runner(options);
  for (;;) {
    try {
      await runner.run();
      break;
    } catch (err) {
      log('error', 'the runner could not finish', {
        error: errorMessage(err),
        permanent: err instanceof PermanentError,
      });
      if (options.exitWhenDone) process.exit(1);
      if (err instanceof PermanentError) break;
      await sleep(IDLE_RETRY_MS); // the host was unreachable for the whole retry deadline: try again later
    }
  }
  if (options.exitWhenDone) process.exit(0);
  // In a sandbox the runner lives as long as the sandbox: idle until the host powers it off.
  setInterval(() => undefined, 1 << 30);
}

// Required by the tests and the benchmark for the redaction functions; run as a program everywhere else.
if (require.main === module) void main();
export { redactStream } from './redact-stream';
export { secretValues } from './redaction';
