// Standalone Proxmox API simulator for demos and manual tests: `node dist/scripts/pve-sim.js --port 8006`.
// `--launch-guest-runner [--guest-work-root DIR] [--allow-local-repos]` runs the real guest runner in started VMs.
import { mkdirSync } from 'node:fs';
import { agentRunnerPath } from '../common/paths';
import { PveSim } from '../simulators/proxmox/server';
import { REALISTIC_LATENCIES } from '../simulators/proxmox/state';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function run(): Promise<void> {
  const snippetsDir = arg('snippets-dir') ?? '/tmp/pve-sim-snippets';
  mkdirSync(snippetsDir, { recursive: true });
  const sim = new PveSim({
    tls: process.argv.includes('--tls'),
    errorFormat: process.argv.includes('--legacy-errors') ? 'legacy' : 'modern',
    snippetsDir,
    latency: process.argv.includes('--fast') ? {} : REALISTIC_LATENCIES,
    authFailureDelayMs: process.argv.includes('--fast') ? 0 : 3000,
    launchGuestRunner: process.argv.includes('--launch-guest-runner')
      ? {
          runnerPath: agentRunnerPath(),
          workRoot: arg('guest-work-root') ?? '/tmp/pve-sim-guests',
          allowLocalRepos: process.argv.includes('--allow-local-repos'),
        }
      : undefined,
    onStart: (e) => console.log(JSON.stringify({ event: 'vm-started', vmid: e.vmid, hasBootstrap: !!e.bootstrap })),
  });
  sim.addTemplate(Number(arg('template') ?? 9000));
  await sim.listen(Number(arg('port') ?? 8006), arg('host') ?? '127.0.0.1');
  console.log(
    JSON.stringify({
      url: sim.url,
      tokenId: sim.tokenId,
      tokenSecret: sim.tokenSecret,
      fingerprint: sim.fingerprint,
      snippetsDir,
    }),
  );
  const stop = () => void sim.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
