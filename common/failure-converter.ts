// Failure messages and stack traces travel as an encoded payload, so the payload codec encrypts them too.
// Loaded by path (workflow bundle, worker, client): it must stay free of Node imports.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
