// Stops the cluster, removes the bridge and, unless the run asks to keep them, the database and logs.
import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const run = globalThis.agentlabCluster;
  if (!run) return;
  await run.cluster.stop();
  await run.network.destroy();
  if (process.env.AGENTLAB_KEEP_CLUSTER_DIR) console.log(`cluster files kept in ${run.dir}`);
  else rmSync(run.dir, { recursive: true, force: true });
}
