// The worker's native (Rust core) connection, with the same TLS and API-key settings and failure reasons as the client.
import { NativeConnection } from '@temporalio/worker';
import type { AgentlabConfig } from '../common/config';
import { connectFailure } from '../common/temporal';
import { sdkConnectionOptions } from '../common/temporal-tls';

export async function connectNative(config: AgentlabConfig): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(sdkConnectionOptions(config.temporal));
  } catch (err) {
    throw await connectFailure(config.temporal, err, '');
  }
}
