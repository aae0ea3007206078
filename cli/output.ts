// How every command prints: data on stdout (aligned table or one JSON document), progress on stderr.
import { CliError } from './errors';

export interface OutputOptions {
  json: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A borderless, kubectl-style table with a stable column order. */
export function printTable(headers: string[], rows: (string | number | undefined)[][]): void {
  const cells = [headers, ...rows.map((row) => row.map((c) => (c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  for (const row of cells) {
    process.stdout.write(
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ') + '\n',
    );
  }
}

export function printFields(fields: [string, string | number | undefined | null][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [key, value] of fields) {
    process.stdout.write(
      `${(key + ':').padEnd(width + 1)} ${value === undefined || value === null || value === '' ? '-' : value}\n`,
    );
  }
}

export function progress(message: string): void {
  process.stderr.write(colorStates(message) + '\n');
}

export function printError(error: CliError, options: OutputOptions): void {
  if (options.json) {
    process.stdout.write(
      JSON.stringify({ error: { code: error.code, message: error.message, details: error.details ?? null } }) + '\n',
    );
  } else {
    process.stderr.write(`error: ${error.message}\n`);
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

/** Colours only on a terminal, and never when NO_COLOR is set (no-color.org). */
export function useColor(stream: NodeJS.WriteStream = process.stderr): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR;
}

/** Colours every state or status word in a progress line. */
export function colorStates(line: string, stream: NodeJS.WriteStream = process.stderr): string {
  if (!useColor(stream)) return line;
  return line.replace(
    /\b(COMPLETED|RUNNING|READY|DESTROYED|FAILED|TIMEOUT|CANCELLED|STOPPED)\b/g,
    (word) => `\x1b[${STATE_COLORS[word]}m${word}\x1b[0m`,
  );
}
