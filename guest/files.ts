// The runner's state files: written atomically, read leniently (a missing or torn file reads as absent).
import * as fs from 'node:fs';

/**
 * A JSON file the runner wrote itself (or the host's bootstrap, which its reader checks), or undefined
 * when it is missing or does not parse. The type is the caller's word for what the file holds.
 */
export function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Write-then-rename, so a crash never leaves a half-written state file behind. */
export function writeFileAtomic(file: string, content: string | Buffer, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}

export const writeJsonFile = (file: string, value: unknown): void =>
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700); // mkdir's mode is filtered by the umask, and the dir may predate us
}
