// Locates files shipped with the package, whether running from sources (tests) or from dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cachedRoot: string | undefined;

export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'tsconfig.json')) === false) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the agentlab package root above ${__dirname}`);
    dir = parent;
  }
  cachedRoot = dir;
  return dir;
}

/** The guest runner as the sandbox runs it: guest/agent-runner.ts compiled (`npm run build`), beside its modules. */
export const agentRunnerPath = (): string => join(packageRoot(), 'dist', 'guest', 'agent-runner.js');
