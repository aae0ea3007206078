// Git as the runner runs it: hooks, helpers and prompts off, the job's credentials from the secrets tmpfs.
import { spawn } from 'node:child_process';

const GIT_TIMEOUT_MS = 30 * 60 * 1000;
const GIT_ERROR_LINES = 20;

export class GitError extends Error {}

// Hooks off and the ext transport off for every git call; fsmonitor off because after the agent ran,
// .git/config is the agent's to edit.
// No credential helper either: the token comes from our askpass and must not be stored anywhere.
const GIT_SAFETY = [
  '-c',
  'protocol.ext.allow=never',
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'credential.helper=',
  // After the agent, the repository belongs to the agent user; hooks, fsmonitor and its config (see
  // Checkout.sanitizeConfig) are already out of play, so git's ownership check only stands in the way.
  '-c',
  'safe.directory=*',
];

/** GIT_ASKPASS / GIT_SSH_COMMAND for the job's credentials, once they are on the tmpfs. */
let gitAuthEnv: Record<string, string> = {};

export function setGitAuthEnv(env: Record<string, string>): void {
  gitAuthEnv = env;
}

// The runner's own git writes reflogs (clone, checkout): an identity given here spares git from building one
// out of the hostname, which can mean a DNS lookup per call.
const RUNNER_GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'agentlab runner',
  GIT_AUTHOR_EMAIL: 'runner@agentlab.invalid',
  GIT_COMMITTER_NAME: 'agentlab runner',
  GIT_COMMITTER_EMAIL: 'runner@agentlab.invalid',
};

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...RUNNER_GIT_IDENTITY,
    ...gitAuthEnv,
    GIT_TERMINAL_PROMPT: '0',
    LC_ALL: 'C',
  };
  // Never wait on a password prompt from ssh either.
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  return env;
}

/**
 * Runs git without blocking the event loop (logs keep shipping while a big clone runs). Resolves
 * with stdout as text (a Buffer with `buffer`); rejects with the tail of git's stderr.
 */
export function git(args: string[], options: { cwd?: string; buffer: true }): Promise<Buffer>;
export function git(args: string[], options?: { cwd?: string; buffer?: false }): Promise<string>;
export function git(
  args: string[],
  { cwd, buffer }: { cwd?: string; buffer?: boolean } = {},
): Promise<string | Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...GIT_SAFETY, ...args], {
      cwd,
      env: gitEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-64 * 1024);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), GIT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new GitError(`git ${args[0]} could not run: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(buffer ? Buffer.concat(out) : Buffer.concat(out).toString('utf8'));
      const tail = err.trim().split('\n').slice(-GIT_ERROR_LINES).join('\n');
      const how = signal ? `was killed by ${signal}` : `failed (exit ${code})`;
      reject(new GitError(`git ${args[0]} ${how}${tail ? `: ${tail}` : ''}`));
    });
  });
}
