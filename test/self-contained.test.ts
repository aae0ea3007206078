// The project needs nothing outside its own folder: a user's clone has no reference material beside it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { packageRoot } from '../common/paths';

describe('self-contained', () => {
  test('no code or script reaches for a folder outside the repository', async () => {
    const files = (
      await execa('git', ['ls-files', '*.ts', '*.js', '*.mjs', '*.sh', 'package.json', '.ci/run'], {
        cwd: packageRoot(),
      })
    ).stdout
      .split('\n')
      .filter((file) => file !== 'test/self-contained.test.ts' && !file.startsWith('test/fixtures/histories/'));
    expect(files.length).toBeGreaterThan(100);
    const outside = /\.\.\/shared\b|AGENTLAB_SHARED_DIR|['"`]shared['"`]\s*,/;
    const offenders = files.filter((file) => outside.test(readFileSync(join(packageRoot(), file), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
