// Benchmark of the qemu backend: per VM, create (allocate, clone, configure), start, the guest's address,
// the runner's bootstrap claim, a snapshot of the running disk, and destroy; with the accelerator named, since
// TCG and KVM differ by an order of magnitude. `npm run bench -- qemu [--n N] [--json]`, inside a network
// namespace of its own (bench/bench.sh): its bridge and ruleset never touch this machine's network.
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { LocalNetwork } from '../backends/local/network';
import { QemuBackend } from '../backends/qemu/backend';
import { parseConfig, resolveProfile } from '../common/config';
import { mintBootstrap } from '../common/bootstrap';
import type { Owner } from '../common/contract';

const argsSchema = z.object({ n: z.coerce.number().int().min(1).max(20).default(2), json: z.boolean().default(false) });
const GATEWAY = '10.78.0.1';

function parseArgs(argv: string[]): z.output<typeof argsSchema> {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--n') raw.n = argv[++i];
    else if (argv[i] === '--json') raw.json = true;
    else throw new Error(`unknown argument ${argv[i]}: expected --n N, --json`);
  }
  const parsed = argsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`bad arguments: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data;
}

/** A stand-in guest API: notes when each VM's runner claims its bootstrap, and refuses it (there is no job). */
function claimRecorder() {
  /** By job: a VMID is reused by the next VM once destroyed. */
  const claims = new Map<string, number>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/bootstrap') {
        const jobId = String((JSON.parse(body) as { jobId?: unknown }).jobId);
        if (!claims.has(jobId)) claims.set(jobId, performance.now());
      }
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"bench: no job here"}');
    });
  });
  return { server, claims };
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

async function run(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-bench-qemu-'));
  const vmidRange = { min: 7000, max: 7099 };
  const network = new LocalNetwork({ bridge: 'agentlab0', subnet: '10.78.0.0/24', guestApiPort: 8844 }, vmidRange);
  const backend = new QemuBackend({ dataDir, vmidRange, network });
  const hostStarted = performance.now();
  const host = await backend.prepareHost();
  const prepareMs = performance.now() - hostStarted;
  const profile = resolveProfile(parseConfig({}, 'embedded defaults', {}).profiles.get('qemu-ephemeral')!, 'bench');
  const { server, claims } = claimRecorder();
  await new Promise<void>((resolve) => server.listen(8844, GATEWAY, resolve));
  const rows: Record<string, number>[] = [];
  try {
    for (let i = 0; i < args.n; i++) {
      const owner: Owner = { jobId: `bench-qemu-${i}`, workflowId: `bench-qemu-${i}` };
      const t0 = performance.now();
      const vmid = await backend.allocate(owner, 1);
      await backend.clone({ vmid, owner }, profile);
      const bootstrap = mintBootstrap({ jobId: owner.jobId, controllerUrl: `http://${GATEWAY}:8844` }, vmid);
      await backend.configure({ vmid, owner }, profile, { bootstrap });
      const created = performance.now();
      await backend.start({ vmid, owner });
      const started = performance.now();
      while (!(await backend.guestAddress({ vmid, owner }))) await sleep(500);
      const addressed = performance.now();
      while (!claims.has(owner.jobId)) await sleep(200);
      const snapshotStarted = performance.now();
      await backend.snapshot({ vmid, owner }, 'clean');
      const destroyStarted = performance.now();
      await backend.destroy({ vmid, owner });
      const done = performance.now();
      rows.push({
        createMs: Math.round(created - t0),
        startMs: Math.round(started - created),
        toAddressS: seconds(addressed - t0),
        toClaimS: seconds(claims.get(owner.jobId)! - t0),
        snapshotRunningMs: Math.round(destroyStarted - snapshotStarted),
        destroyMs: Math.round(done - destroyStarted),
      });
      if (!args.json) console.log(`qemu VM ${i + 1}/${args.n}: ${JSON.stringify(rows.at(-1))}`);
    }
  } finally {
    server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const result = {
    accelerator: host.accelerator,
    acceleratorReason: host.reason,
    prepareHostS: seconds(prepareMs),
    profile: { cores: profile.cores, memoryMb: profile.memoryMb, diskGb: profile.diskGb },
    vms: rows,
  };
  console.log(args.json ? JSON.stringify(result) : `qemu backend (${host.accelerator}): ${JSON.stringify(result)}`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
