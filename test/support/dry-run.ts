// The deployment scripts' --dry-run output: each line a command printed with printf %q.
import execa from 'execa';

/** Splits a dry-run line back into its words, as bash would. */
export async function words(line: string): Promise<string[]> {
  const { stdout } = await execa('bash', ['-c', `eval "set -- $1"; printf '%s\\0' "$@"`, 'split', line]);
  return stdout.split('\0').filter((w) => w !== '');
}
