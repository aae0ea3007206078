// The operator API's contract (worker serves it, a CLI on another machine reads through it): routes and token.
import { existsSync, readFileSync } from 'node:fs';
import { checkPrivateFile } from './secrets';

export const OPERATOR_ROUTES = {
  log: (jobId: string, offset: number) => `/v1/jobs/${encodeURIComponent(jobId)}/log?offset=${offset}`,
  artifacts: (jobId: string) => `/v1/jobs/${encodeURIComponent(jobId)}/artifacts`,
  artifact: (jobId: string, name: string) =>
    `/v1/jobs/${encodeURIComponent(jobId)}/artifacts/${encodeURIComponent(name)}`,
};

/** The largest log chunk one response carries; a reader asks again from the new offset. */
export const OPERATOR_LOG_CHUNK_BYTES = 4 * 1024 * 1024;

export class OperatorTokenError extends Error {
  override name = 'OperatorTokenError';
}

/** The shared bearer token: private file, one line, long enough not to be guessed. */
export function loadOperatorToken(file: string): string {
  const fix = `create it with: head -c 32 /dev/urandom | base64 > ${file} && chmod 600 ${file}`;
  if (!existsSync(file)) throw new OperatorTokenError(`operator API token file ${file} does not exist; ${fix}`);
  checkPrivateFile(file, 'operator API token file');
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 32 || /\s/.test(token)) {
    throw new OperatorTokenError(`operator API token file ${file} must hold one line of 32+ characters; ${fix}`);
  }
  return token;
}
