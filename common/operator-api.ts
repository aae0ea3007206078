// The operator API's contract (worker serves it, a CLI on another machine reads through it): routes and token.
import { randomSecretFileFix, readPrivateSecretFile } from './secrets';

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
  const token = readPrivateSecretFile(file, 'operator API token file', (message) => new OperatorTokenError(message));
  if (token.length < 32 || /\s/.test(token)) {
    throw new OperatorTokenError(
      `operator API token file ${file} must hold one line of 32+ characters; ${randomSecretFileFix(file)}`,
    );
  }
  return token;
}
