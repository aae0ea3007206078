// How every command prints: data on stdout (aligned table or one JSON document), progress on stderr, both
// through the command's CliIo.
import { CliError } from './errors';
import type { CliIo } from './io';

export interface OutputOptions {
  json: boolean;
}

export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + '\n');
}

/** A borderless, kubectl-style table with a stable column order. */
export function printTable(io: CliIo, headers: string[], rows: (string | number | undefined)[][]): void {
  const cells = [headers, ...rows.map((row) => row.map((c) => (c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  for (const row of cells) {
    io.out(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ') + '\n');
  }
}

export function printFields(io: CliIo, fields: [string, string | number | undefined | null][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [key, value] of fields) {
    io.out(`${(key + ':').padEnd(width + 1)} ${value === undefined || value === null || value === '' ? '-' : value}\n`);
  }
}

export function progress(io: CliIo, message: string): void {
  io.err(colorStates(message, io.errColor) + '\n');
}

export function printError(io: CliIo, error: CliError, options: OutputOptions): void {
  if (options.json) {
    io.out(
      JSON.stringify({ error: { code: error.code, message: error.message, details: error.details ?? null } }) + '\n',
    );
  } else {
    io.err(`error: ${error.message}\n`);
  }
}

export function formatTime(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const STATE_COLORS: Record<string, number> = {
  COMPLETED: 32,
  RUNNING: 36,
  READY: 36,
  DESTROYED: 90,
  FAILED: 31,
  TIMEOUT: 33,
  CANCELLED: 33,
  STOPPED: 33,
};

/** Colours every state or status word in a progress line, when the stream shows colours (CliIo.errColor). */
function colorStates(line: string, color: boolean): string {
  if (!color) return line;
  return line.replace(
    /\b(COMPLETED|RUNNING|READY|DESTROYED|FAILED|TIMEOUT|CANCELLED|STOPPED)\b/g,
    (word) => `\x1b[${STATE_COLORS[word]}m${word}\x1b[0m`,
  );
}
