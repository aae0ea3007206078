// Turns examples/hello-repo into a real git repository (used by the demo and the tests).
import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { exampleRepoRoot } from './config';
import { packageRoot } from './paths';

export async function createExampleRepo(parentDir?: string): Promise<string> {
  mkdirSync(exampleRepoRoot(), { recursive: true });
  const dir = join(parentDir ?? mkdtempSync(join(exampleRepoRoot(), 'repo-')), 'hello-repo');
  cpSync(join(packageRoot(), 'examples', 'hello-repo'), dir, { recursive: true });
  const git = (...args: string[]) =>
    execa('git', ['-c', 'user.name=agentlab', '-c', 'user.email=agentlab@example.invalid', ...args], { cwd: dir });
  await git('init', '--quiet', '--initial-branch=main');
  await git('add', '-A');
  await git('commit', '--quiet', '-m', 'initial commit');
  return dir;
}
