// `npm run demo [-- --agent claude|codex|opencode]`: one real job on the embedded defaults — dev server,
// worker, isolated local sandbox — with the scripted stand-in agent, or with a real agent CLI talking to
// the scripted model API on a host of its own (scripts/demo-internet.ts).
// `npm run demo -- --backend qemu`: the scripted agent's job in a real QEMU VM (backends/qemu/), the example
// repository cloned by the guest over git:// from that same host.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { AGENT_KINDS, type AgentKind } from '../common/agents';
import { loadConfig, parseConfig } from '../common/config';
import { createExampleRepo } from '../common/example-repo';
import { packageRoot } from '../common/paths';
import { ensureGuestImage } from '../backends/qemu/guest-image';
import { modelApiSecrets, SCRIPTED_MODELS } from '../simulators/model-api/agent-invocations';
import { DEMO_API_ADDRESS, DemoInternet } from './demo-internet';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');
const SCRIPTED_AGENT = join(packageRoot(), 'examples', 'agents', 'scripted-agent.sh');

function agentlab(
  args: string[],
  options: { capture?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', options.capture ? 'pipe' : 'inherit', 'inherit'],
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('exit', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

/** `--agent <kind>`, validated; undefined for the scripted stand-in. */
function agentArgument(): AgentKind | undefined {
  const at = process.argv.indexOf('--agent');
  if (at < 0) return undefined;
  const kind = process.argv[at + 1];
  if (!AGENT_KINDS.includes(kind as AgentKind)) {
    console.error(`--agent: expected one of ${AGENT_KINDS.join(', ')}, got ${JSON.stringify(kind ?? '')}`);
    process.exit(2);
  }
  return kind as AgentKind;
}

type DemoBackend = 'local' | 'qemu';

/** `--backend local|qemu`, validated; local when absent. */
function backendArgument(): DemoBackend {
  const at = process.argv.indexOf('--backend');
  if (at < 0) return 'local';
  const backend = process.argv[at + 1];
  if (backend !== 'local' && backend !== 'qemu') {
    console.error(`--backend: expected local or qemu, got ${JSON.stringify(backend ?? '')}`);
    process.exit(2);
  }
  return backend;
}

/**
 * For `--backend qemu`: QEMU and the guest image, the example repository served over git:// from the demo's
 * "Internet" (a VM sees no host path), and a config of the demo's own enabling the qemu backend with a
 * profile like `qemu-ephemeral` but with timeouts for TCG: nothing of the operator's is touched.
 */
async function qemuSetup(demoDir: string, internet: DemoInternet) {
  console.error('==> scripts/ensure-deps.sh --for qemu --host-only (QEMU and the image tools, once)');
  // --host-only: `npm run setup` already did the rest, and node_modules must not be reinstalled under us.
  const deps = spawn('bash', [join(packageRoot(), 'scripts', 'ensure-deps.sh'), '--for', 'qemu', '--host-only'], {
    stdio: 'inherit',
  });
  const depsCode = await new Promise<number>((resolve) => deps.once('exit', (code) => resolve(code ?? 1)));
  if (depsCode !== 0) throw new Error(`scripts/ensure-deps.sh --for qemu --host-only exited with ${depsCode}`);
  console.error('==> the guest image (scripts/build-guest-image.sh: about 1.5 minutes once, then cached)');
  const { image } = await ensureGuestImage();
  console.error(`    ${image.dir}`);

  await internet.start();
  const repo = await internet.serveGit(await createExampleRepo(join(demoDir, 'repos')));
  console.error(`==> the example repository on ${repo} (git-daemon on the demo's Internet, ${DEMO_API_ADDRESS})`);

  const env = { AGENTLAB_CONFIG: join(demoDir, 'config.yaml') };
  const profile = 'demo-qemu';
  const ephemeral = parseConfig({}, 'embedded defaults').profiles.get('qemu-ephemeral')!;
  writeFileSync(
    env.AGENTLAB_CONFIG,
    YAML.stringify({
      worker: { backends: ['qemu'] },
      // The image just ensured, so the worker's start need not run the build script again.
      qemu: { imageDir: image.dir },
      profiles: [
        {
          name: profile,
          description: 'qemu-ephemeral with timeouts for TCG (the demo)',
          backend: 'qemu',
          resources: ephemeral.resources,
          ttl: '30m',
          agent: { timeout: '5m' },
          // Under TCG a boot takes one to two minutes (more on a loaded host); one attempt: a failure shows at once.
          provisioning: { attempts: 1, bootTimeout: '6m', bootstrapTimeout: '6m' },
        },
      ],
    }),
  );
  return { env, profile, repo };
}

/** The accelerator the qemu worker chose at start (it records it), for the demo to say what to expect. */
function recordedAccelerator(dataDir: string): { accelerator: string; reason: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, 'qemu', 'accelerator.json'), 'utf8')) as {
      accelerator: string;
      reason: string;
    };
  } catch {
    return undefined;
  }
}

/**
 * A config of the demo's own (the defaults plus a profile running the real agent with a secrets bundle
 * that names the scripted model API), and its own secrets key and bundles: nothing of the operator's.
 */
async function realAgentSetup(kind: AgentKind, demoDir: string, baseUrl: string, key: string) {
  const env = {
    AGENTLAB_CONFIG: join(demoDir, 'config.yaml'),
    AGENTLAB_SECRETS_KEY_FILE: join(demoDir, 'keys', 'age.key'),
    AGENTLAB_SECRETS_DIR: join(demoDir, 'secrets'),
  };
  const profile = `demo-${kind}`;
  writeFileSync(
    env.AGENTLAB_CONFIG,
    YAML.stringify({
      profiles: [
        {
          name: profile,
          backend: 'local',
          secretsBundle: 'demo-model-api',
          agent: { kind, ...(SCRIPTED_MODELS[kind] ? { model: SCRIPTED_MODELS[kind] } : {}), timeout: '5m' },
        },
      ],
    }),
  );
  const must = async (args: string[]) => {
    if ((await agentlab(args, { capture: true, env })).code !== 0) throw new Error(`agentlab ${args.join(' ')} failed`);
  };
  await must(['secrets', 'init']);
  // The values from a file (never on a command line, where ps would show them), as an operator would.
  const valueFile = join(demoDir, 'value');
  for (const [name, value] of Object.entries(modelApiSecrets(kind, baseUrl, key))) {
    writeFileSync(valueFile, value, { mode: 0o600 });
    await must(['secrets', 'set-env', '--bundle', 'demo-model-api', '--name', name, '--value-file', valueFile]);
  }
  rmSync(valueFile, { force: true });
  return { env, profile };
}

async function run(): Promise<void> {
  const kind = agentArgument();
  const backend = backendArgument();
  if (kind && backend === 'qemu') {
    // The guest image has no agent CLIs yet (docs/qemu-guest.md, "Left to do").
    console.error('--agent: the qemu backend runs the scripted agent only; drop --agent or --backend qemu');
    process.exit(2);
  }
  const demoDir = mkdtempSync(join(tmpdir(), 'agentlab-demo-'));
  const internet = new DemoInternet();
  let env: NodeJS.ProcessEnv = {};
  let profile = 'local';
  let repo: string | undefined;
  let exitCode = 1;
  try {
    if (kind) {
      console.error(`==> agentlab agents install (the pinned agent CLIs, once)`);
      if ((await agentlab(['agents', 'install'])).code !== 0) process.exit(1);
      const key = `sk-demo-${randomBytes(16).toString('hex')}`;
      console.error(`==> the scripted model API on ${internet.baseUrl} (a network namespace of its own)`);
      await internet.start();
      await internet.serveModelApi(key);
      ({ env, profile } = await realAgentSetup(kind, demoDir, internet.baseUrl, key));
    }
    if (backend === 'qemu') ({ env, profile, repo } = await qemuSetup(demoDir, internet));
    const config = loadConfig({ ...process.env, ...env });
    console.error(`==> agentlab up (Temporal dev server with Web UI, and a worker with the ${backend} backend)`);
    const up = await agentlab(['up', '--json'], { capture: true, env });
    if (up.code !== 0) {
      // --json puts up's error on stdout, which the demo captured: show it.
      let message = up.stdout.trim();
      try {
        message = (JSON.parse(message) as { error: { message: string } }).error.message;
      } catch {
        // not the JSON error document: show what it printed
      }
      console.error(`error: agentlab up failed: ${message}`);
      exitCode = up.code;
      return;
    }
    const stack = JSON.parse(up.stdout) as { temporal: { status: string }; worker: { status: string } };
    console.error(
      `    Temporal ${stack.temporal.status}, worker ${stack.worker.status}; Web UI: ${config.temporal.uiUrl}`,
    );
    try {
      if ((kind || backend === 'qemu') && stack.worker.status !== 'started') {
        console.error(
          'error: a worker is already running without the demo profile; stop the stack (agentlab down) and run the demo again',
        );
        return;
      }
      if (backend === 'qemu') {
        const accel = recordedAccelerator(config.dataDir);
        console.error(
          accel?.accelerator === 'kvm'
            ? '    the VM boots under KVM: seconds'
            : `    the VM boots under TCG (${accel?.reason ?? 'no usable KVM'}): expect 1–2 minutes before the agent runs`,
        );
      }
      exitCode = await demoJob(config.dataDir, profile, env, { kind, repo });
    } finally {
      if (stack.temporal.status === 'started' || stack.worker.status === 'started') {
        console.error('==> agentlab down (the demo started the stack, so it stops it)');
        await agentlab(['down'], { env });
      }
    }
  } finally {
    await internet.stop();
    rmSync(demoDir, { recursive: true, force: true });
    process.exitCode = exitCode;
  }
}

async function demoJob(
  dataDir: string,
  profile: string,
  env: NodeJS.ProcessEnv,
  options: { kind?: AgentKind; repo?: string },
): Promise<number> {
  const { kind } = options;
  const repo = options.repo ?? (await createExampleRepo());
  const jobId = `demo-${Date.now().toString(36)}`;
  // A VM has no host path: the scripted agent goes in as the command's text (the runner runs it with sh -c).
  const inVm = options.repo !== undefined;
  const agent = kind
    ? [] // the profile's own agent
    : ['--agent-command', inVm ? readFileSync(SCRIPTED_AGENT, 'utf8') : SCRIPTED_AGENT];
  const shownAgent = inVm ? ['--agent-command', '"$(cat examples/agents/scripted-agent.sh)"'] : agent;
  const task = kind
    ? 'scenario:create-file Create AGENT_EDIT.md saying which agent edited the repository.'
    : 'Add a friendly greeting to the README and write NOTES.md';
  console.error(`==> agentlab job run --repo ${repo} --profile ${profile} --task "..." ${shownAgent.join(' ')}`);
  const startedMs = Date.now();
  const run = await agentlab(
    ['job', 'run', '--repo', repo, '--profile', profile, '--id', jobId, '--task', task, ...agent],
    {
      env,
    },
  );
  const seconds = ((Date.now() - startedMs) / 1000).toFixed(0);
  const jobDir = join(dataDir, 'jobs', jobId);
  for (const [title, file] of [
    ['agent log', 'agent.log'],
    ['changes.patch', 'artifacts/changes.patch'],
    ['report.json', 'artifacts/report.json'],
  ] as const) {
    const path = join(jobDir, file);
    if (existsSync(path)) console.error(`==> ${title} (${path})\n${readFileSync(path, 'utf8')}`);
  }
  await agentlab(['job', 'show', jobId], { env });
  // What a TCG boot costs is the question a qemu demo answers; the local demo's output stays as it was.
  if (inVm) console.error(`==> the job took ${seconds} s, from job run to its VM destroyed`);
  return run.code;
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
