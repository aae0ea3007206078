// OpenAI's key header and error bodies, shared by its Responses and Chat Completions APIs (and the model listing).
import { newId, unixSeconds, type ApiError, type ApiErrorKind } from './wire';

export function bearerKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  return typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
}

// The real 401 masks the key it quotes ("sk-ab***yz"); this one quotes none of it, so no test can find it leaked here.
const ERRORS: Record<ApiErrorKind, { status: number; type: string; code: string | null; message: string }> = {
  missing_key: {
    status: 401,
    type: 'invalid_request_error',
    code: null,
    message:
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer " +
      'auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from https://platform.openai.com/account/api-keys.',
  },
  wrong_key: {
    status: 401,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    message: 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
  },
  rate_limited: {
    status: 429,
    type: 'requests',
    code: 'rate_limit_exceeded',
    message: 'Rate limit reached for requests. Please try again in 1s.',
  },
  server_error: {
    status: 500,
    type: 'server_error',
    code: null,
    message: 'The server had an error while processing your request. Sorry about that!',
  },
  bad_request: { status: 400, type: 'invalid_request_error', code: null, message: 'Invalid request' },
  not_found: { status: 404, type: 'invalid_request_error', code: null, message: 'Invalid URL' },
};

export function openaiError(kind: ApiErrorKind, message?: string): ApiError {
  const e = ERRORS[kind];
  return {
    status: e.status,
    body: { error: { message: message ?? e.message, type: e.type, param: null, code: e.code } },
    headers: { 'x-request-id': newId('req_') },
  };
}

/** GET /v1/models in OpenAI's shape. */
export function openaiModelList(models: string[]): unknown {
  return {
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: unixSeconds(), owned_by: 'agentlab' })),
  };
}
