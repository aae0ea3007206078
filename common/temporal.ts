// Connecting to Temporal (Node only), shared by the CLI, the worker and the guest API.
import { Client, Connection } from '@temporalio/client';
import { codecFor, dataConverter, type AesGcmCodec } from './codec';
import type { AgentlabConfig } from './config';

export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
}

/** `codec`: the caller's, when it has loaded the key already (the worker). */
export async function connectClient(
  config: AgentlabConfig,
  codec: AesGcmCodec | undefined = codecFor(config),
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '3s' });
  } catch (err) {
    throw new TemporalUnavailableError(
      `cannot reach Temporal at ${config.temporal.address}: ${(err as Error).message}` +
        ' (start it with `agentlab up`, or set TEMPORAL_ADDRESS)',
    );
  }
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: dataConverter(codec),
  });
}
