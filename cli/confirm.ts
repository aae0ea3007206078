// Destructive actions ask on a terminal and need --yes elsewhere, so scripts never destroy by accident.
import { createInterface } from 'node:readline/promises';
import { rejected, usageError } from './errors';

export async function confirm(action: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw usageError(`refusing to ${action} without --yes (not on a terminal)`);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${action}? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw rejected(`did not ${action}`);
  } finally {
    prompt.close();
  }
}
