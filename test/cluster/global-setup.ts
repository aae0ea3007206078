// `npm run test:cluster`: starts the bridge and ONE multi-service Temporal cluster on PostgreSQL for the run (see
// temporal-cluster.ts), and tells the suites where it is as the main suite's global setup does for the dev server.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../common/paths';
import { temporalCliPath } from '../../common/temporal-server';
import { freePort } from '../support/stack';
import { ClusterNetwork } from './network';
import { TemporalCluster } from './temporal-cluster';

declare global {
  var agentlabCluster: { cluster: TemporalCluster; network: ClusterNetwork; dir: string } | undefined;
}

/**
 * Temporal stores each host's membership port in a PostgreSQL smallint (cluster_membership.rpc_port): a port
 * from the kernel's ephemeral range (32768 and up) fails the service at start. A free one below it, then.
 */
async function membershipPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await isFree(port)) return port;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

export default async function globalSetup(): Promise<void> {
  const serverDir = process.env.AGENTLAB_TEMPORAL_SERVER_DIR;
  if (!serverDir) throw new Error('AGENTLAB_TEMPORAL_SERVER_DIR is unset: run the suite with `npm run test:cluster`');
  const dir = mkdtempSync(join(tmpdir(), 'agentlab-cluster-'));
  const network = new ClusterNetwork();
  await network.create();
  const cluster = new TemporalCluster({
    dir,
    serverDir,
    temporalCli: temporalCliPath(),
    ip: network.gateway,
    namespace: 'default',
  });
  globalThis.agentlabCluster = { cluster, network, dir };
  const service = async () => ({ grpc: await freePort(), membership: await membershipPort() });
  const started = Date.now();
  try {
    await cluster.start({
      postgres: await freePort(),
      services: {
        frontend: await service(),
        history: await service(),
        matching: await service(),
        worker: await service(),
      },
    });
  } catch (err) {
    // Jest skips the global teardown when the setup fails: leave no process or bridge behind.
    await cluster.stop();
    await network.destroy();
    throw new Error(`${(err as Error).message}\n(the cluster's logs are in ${dir})`);
  }
  const figures = { ...cluster.figures, clusterStartSeconds: (Date.now() - started) / 1000 };
  console.log(`\nTemporal cluster on PostgreSQL at ${cluster.address} (logs in ${dir}): ${JSON.stringify(figures)}`);
  mkdirSync(join(packageRoot(), 'test-artifacts'), { recursive: true });
  writeFileSync(join(packageRoot(), 'test-artifacts', 'cluster-figures.json'), JSON.stringify(figures));
  process.env.AGENTLAB_TEST_TEMPORAL_ADDRESS = cluster.address;
  process.env.AGENTLAB_TEST_CLUSTER_NETWORK = network.toEnv();
}
