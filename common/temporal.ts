// Connecting to Temporal (Node only), shared by the CLI, the worker and the guest API.
import { Client, Connection, isGrpcServiceError } from '@temporalio/client';
import { codecFor, dataConverter, type AesGcmCodec } from './codec';
import type { AgentlabConfig } from './config';
import { diagnoseTls } from './temporal-tls-probe';
import { sdkConnectionOptions, type TemporalConnectionSettings } from './temporal-tls';

export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
  /** `tls`: the handshake failed (the message has the reason); `auth`: the server refused our credential. */
  constructor(
    message: string,
    readonly reason: 'unreachable' | 'tls' | 'auth' = 'unreachable',
  ) {
    super(message);
  }
}

const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;

/**
 * Why a connection failed, as an operator can act on it: the TLS reason when TLS is on and the handshake is what
 * failed, the refused credential, else "cannot reach". Never includes a key or certificate content.
 */
export async function connectFailure(
  settings: TemporalConnectionSettings,
  err: unknown,
  hint = ' (start it with `agentlab up`, or set TEMPORAL_ADDRESS)',
): Promise<TemporalUnavailableError> {
  const { address } = settings;
  // Connection.connect wraps the refused GetSystemInfo call in a ServiceError of its own.
  const grpc = [err, (err as Error | undefined)?.cause].find(isGrpcServiceError);
  if (grpc && [GRPC_UNAUTHENTICATED, GRPC_PERMISSION_DENIED].includes(grpc.code ?? -1)) {
    const credential = settings.apiKeyFile
      ? `the API key in temporal.apiKeyFile (${settings.apiKeyFile})`
      : 'the client certificate';
    return new TemporalUnavailableError(`Temporal at ${address} refused ${credential}: ${grpc.details}`, 'auth');
  }
  if (settings.tls || settings.apiKeyFile) {
    const reason = await diagnoseTls(sdkConnectionOptions(settings), settings.tls);
    if (reason)
      return new TemporalUnavailableError(`TLS handshake with Temporal at ${address} failed: ${reason}`, 'tls');
  }
  return new TemporalUnavailableError(`cannot reach Temporal at ${address}: ${(err as Error).message}${hint}`);
}

/** `codec`: the caller's, when it has loaded the key already (the worker). */
export async function connectClient(
  config: AgentlabConfig,
  codec: AesGcmCodec | undefined = codecFor(config),
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...sdkConnectionOptions(config.temporal), connectTimeout: '3s' });
  } catch (err) {
    throw await connectFailure(config.temporal, err);
  }
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: dataConverter(codec),
  });
}
