// The runner's own messages: diagnostics on stderr, and the few lines it adds to the agent's log.
import * as fs from 'node:fs';
import { redactText } from './redaction';

/** Diagnostics as one-line JSON on stderr, redacted. Never pass a token or credential here anyway. */
export function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
  process.stderr.write(redactText(line) + '\n');
}

/** Runner lines in agent.log are only for problems: a healthy log is the agent's output, byte for byte. */
export function appendRunnerLine(logFile: string, line: string): void {
  fs.appendFileSync(logFile, `agent-runner: ${redactText(line)}\n`);
}

/** An error's message, whatever was thrown. */
export const errorMessage = (err: unknown): string => (err as Error).message;
