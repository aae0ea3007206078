// Every file under a directory as one text: a secret must be nowhere in what a run left on disk.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function allFilesText(dir: string): string {
  const parts: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d)) {
      const path = join(d, entry);
      const st = statSync(path, { throwIfNoEntry: false });
      if (st?.isDirectory()) walk(path);
      else if (st?.isFile()) parts.push(readFileSync(path).toString('utf8'));
    }
  };
  walk(dir);
  return parts.join('\n');
}
