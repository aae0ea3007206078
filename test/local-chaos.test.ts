// Chaos on the local backend with isolation on: jobs in namespace sandboxes while the worker is SIGKILLed again
// and again. Every job must end COMPLETED with exactly one sandbox, and nothing of any sandbox may be left on the
// host: no network namespace, veth port, mount, sandbox directory or process. (bench/chaos.ts does the same
// on the Proxmox simulator with API faults.)
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { createExampleRepo } from '../common/example-repo';
import { OUTSIDE_HOSTS, TestNetwork } from './support/netns';
import { SCRIPTED_AGENT, sleep } from './support/stack';

const GATEWAY = '10.78.0.1';
const JOBS = 5;

describe('local backend chaos: worker SIGKILLs under isolated sandboxes', () => {
  const net = new TestNetwork();
  const home = mkdtempSync(join(tmpdir(), 'agentlab-local-chaos-'));
  const dataDir = join(home, 'data');
  const configPath = join(home, 'config.yaml');
  const env = { ...process.env, AGENTLAB_CONFIG: configPath };
  const cli = (args: string[]) => net.cli(env, args);
  const show = async (jobId: string) => JSON.parse((await cli(['job', 'show', jobId, '--json'])).stdout);

  beforeAll(async () => {
    await net.create();
    writeFileSync(
      configPath,
      YAML.stringify({
        node: 'chaoshost',
        dataDir,
        temporal: { address: '127.0.0.1:7233' },
        vmidRange: { min: 7300, max: 7399 },
        local: { isolation: 'namespaces', subnet: '10.78.0.0/24', dns: { upstreams: [OUTSIDE_HOSTS.internet] } },
        // Room for every job at once: the kills, not the admission line, should decide the timing.
        worker: { shutdownGraceTime: '2s', admission: { cores: 64, memoryMb: 65536, cpuOvercommit: 1 } },
        profiles: [{ name: 'local', backend: 'local', ttl: '10m', provisioning: { attempts: 3, bootTimeout: '30s' } }],
      }),
    );
    await net.startHostStack(env, GATEWAY);
  });
  afterAll(() => net.destroy());

  test(`${JOBS} jobs through repeated worker SIGKILLs: all COMPLETED, one sandbox each, nothing left`, async () => {
    const repo = await createExampleRepo(home);
    const ids = Array.from({ length: JOBS }, (_, i) => `local-chaos-${i}`);
    for (const [i, id] of ids.entries()) {
      // Staggered lengths, so that the kills land in every phase: provisioning, boot, claim, run, teardown.
      const agent = `SCRIPTED_AGENT_SLEEP=${14 + i * 4} ${SCRIPTED_AGENT}`;
      const started = await cli(
        ['job', 'run', '--repo', repo, '--task', id, '--id', id, '--detach'].concat(['--agent-command', agent]),
      );
      expect(started).toMatchObject({ code: 0 });
    }
    let worker: ChildProcess | undefined = undefined;
    let kills = 0;
    const closed = async () => {
      const docs = await Promise.all(ids.map(show));
      if (process.env.AGENTLAB_CHAOS_PROGRESS)
        console.log(docs.map((d) => `${d.status}/${d.sandbox?.state}`).join(' '));
      return docs.every((doc) => doc.status !== 'RUNNING' && doc.sandbox?.state === 'DESTROYED');
    };
    const deadline = Date.now() + 240_000;
    while (!(await closed()) && Date.now() < deadline) {
      await sleep(2000 + Math.random() * 1500);
      // The first worker is startHostStack's: find it by its config, as any other.
      const pids = (await net.execIn(net.host, 'pgrep', ['-f', `dist/worker/main.js`])).stdout.split('\n');
      for (const pid of pids.filter(Boolean)) {
        if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`AGENTLAB_CONFIG=${configPath}`)) {
          process.kill(Number(pid), 'SIGKILL');
          kills++;
        }
      }
      await sleep(500);
      worker = await net.startWorker(env, GATEWAY);
    }
    expect(worker).toBeDefined();
    expect(kills).toBeGreaterThanOrEqual(3);

    const finals = await Promise.all(ids.map(show));
    expect(finals.map((doc) => [doc.jobId, doc.status, doc.sandbox.state])).toEqual(
      ids.map((id) => [id, 'COMPLETED', 'DESTROYED']),
    );
    for (const doc of finals) {
      const vmid = doc.sandbox.vmid as number;
      const journal = readFileSync(join(dataDir, 'sandboxes', 'journal.ndjson'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { op: string; jobId: string });
      expect(journal.filter((e) => e.jobId === doc.jobId).map((e) => e.op)).toEqual(['clone', 'destroy']);
      expect((await net.execIn(net.host, 'ip', ['netns', 'list'])).stdout).not.toContain(`agentlab-${vmid}`);
      expect((await net.execIn(net.host, 'ip', ['link', 'show'])).stdout).not.toContain(`alv${vmid}`);
      expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(`agentlab-${vmid}`);
      expect(existsSync(join(dataDir, 'sandboxes', String(vmid)))).toBe(false);
    }
    const leftovers = (await net.execIn(net.host, 'pgrep', ['-af', join(dataDir, 'sandboxes')])).stdout;
    expect(leftovers).toBe('');
    expect(readdirSync(join(dataDir, 'sandboxes')).filter((e) => /^\d+$/.test(e))).toEqual([]);
    console.log(`local chaos: ${JOBS} jobs, ${kills} worker SIGKILLs`);
  }, 300_000);
});
