// Standalone Proxmox API simulator for demos, manual tests and other clients: `npm run pve-sim -- --help`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { CommanderError } from 'commander';
import { agentRunnerPath } from '../common/paths';
import { parseSimArgs } from '../simulators/proxmox/cli';
import { PveSim } from '../simulators/proxmox/server';
import { FAST_LATENCIES, mergeLatencies, REALISTIC_LATENCIES } from '../simulators/proxmox/state';

async function run(): Promise<void> {
  let cli;
  try {
    cli = parseSimArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CommanderError && err.code === 'commander.helpDisplayed') process.exit(0);
    // Our argument errors name their flag already: commander's own preamble would say it twice.
    const message = (err as Error).message
      .replace(/^error: /, '')
      .replace(/^option '[^']*' argument '.*' is invalid\. (?=--)/, '');
    console.error(`pve-sim: ${message}`);
    process.exit(2);
  }
  mkdirSync(cli.snippetsDir, { recursive: true });
  const sim = new PveSim({
    nodes: cli.nodes,
    tls: cli.tls,
    errorFormat: cli.legacyErrors ? 'legacy' : 'modern',
    snippetsDir: cli.snippetsDir,
    latency: mergeLatencies(cli.fast ? FAST_LATENCIES : REALISTIC_LATENCIES, cli.latency),
    faults: cli.faults,
    requestLog: cli.requestLog,
    authFailureDelayMs: cli.fast ? 0 : 3000,
    launchGuestRunner: cli.launchGuestRunner
      ? { runnerPath: agentRunnerPath(), workRoot: cli.guestWorkRoot, allowLocalRepos: cli.allowLocalRepos }
      : undefined,
    onStart: (e) =>
      console.log(JSON.stringify({ event: 'vm-started', vmid: e.vmid, node: e.node, hasBootstrap: !!e.bootstrap })),
  });
  sim.addTemplate(cli.template, { storage: cli.templateStorage });
  await sim.listen(cli.port, cli.host);
  // Clients that take a CA file (curl --cacert, proxmox.caFile) trust this self-signed certificate through it.
  if (sim.certificate) writeFileSync(cli.caFile, sim.certificate);
  console.log(
    JSON.stringify({
      url: sim.url,
      nodes: sim.nodes,
      tokenId: sim.tokenId,
      tokenSecret: sim.tokenSecret,
      fingerprint: sim.fingerprint,
      caFile: sim.certificate ? cli.caFile : undefined,
      snippetsDir: cli.snippetsDir,
      requestLog: cli.requestLog,
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
