// Turns examples/hello-repo into a real git repository (used by the demo and the tests).
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import { packageRoot } from './paths';

/** A fresh `hello-repo` with one commit, in `parentDir` or a new temporary directory. */
export async function createExampleRepo(parentDir?: string): Promise<string> {
  const dir = join(parentDir ?? mkdtempSync(join(tmpdir(), 'agentlab-example-')), 'hello-repo');
  cpSync(join(packageRoot(), 'examples', 'hello-repo'), dir, { recursive: true });
  const git = (...args: string[]) =>
    execa('git', ['-c', 'user.name=agentlab', '-c', 'user.email=agentlab@example.invalid', ...args], { cwd: dir });
  await git('init', '--quiet', '--initial-branch=main');
  await git('add', '-A');
  await git('commit', '--quiet', '-m', 'initial commit');
  return dir;
}
