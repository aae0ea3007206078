// `npm run demo`: one real job on the embedded defaults — dev server, worker, local sandbox, scripted agent.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../common/config';
import { createExampleRepo } from '../common/example-repo';
import { packageRoot } from '../common/paths';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');
const SCRIPTED_AGENT = join(packageRoot(), 'examples', 'agents', 'scripted-agent.sh');

function agentlab(args: string[], capture = false): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
    });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('exit', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

async function run(): Promise<void> {
  const config = loadConfig();
  console.error('==> agentlab up (Temporal dev server with Web UI, and a worker with the local backend)');
  const up = await agentlab(['up', '--json'], true);
  if (up.code !== 0) {
    // --json puts up's error on stdout, which the demo captured: show it.
    let message = up.stdout.trim();
    try {
      message = (JSON.parse(message) as { error: { message: string } }).error.message;
    } catch {
      // not the JSON error document: show what it printed
    }
    console.error(`error: agentlab up failed: ${message}`);
    process.exit(up.code);
  }
  const stack = JSON.parse(up.stdout) as { temporal: { status: string }; worker: { status: string } };
  console.error(
    `    Temporal ${stack.temporal.status}, worker ${stack.worker.status}; Web UI: ${config.temporal.uiUrl}`,
  );

  let exitCode = 1;
  try {
    const repo = await createExampleRepo();
    const jobId = `demo-${Date.now().toString(36)}`;
    console.error(`==> agentlab job run --repo ${repo} --task "..." --profile local --agent-command ${SCRIPTED_AGENT}`);
    const run = await agentlab([
      'job',
      'run',
      '--repo',
      repo,
      '--profile',
      'local',
      '--id',
      jobId,
      '--task',
      'Add a friendly greeting to the README and write NOTES.md',
      '--agent-command',
      SCRIPTED_AGENT,
    ]);
    exitCode = run.code;
    const jobDir = join(config.dataDir, 'jobs', jobId);
    for (const [title, file] of [
      ['agent log', 'agent.log'],
      ['changes.patch', 'artifacts/changes.patch'],
    ] as const) {
      const path = join(jobDir, file);
      if (existsSync(path)) console.error(`==> ${title} (${path})\n${readFileSync(path, 'utf8')}`);
    }
    await agentlab(['job', 'show', jobId]);
  } finally {
    if (stack.temporal.status === 'started' || stack.worker.status === 'started') {
      console.error('==> agentlab down (the demo started the stack, so it stops it)');
      await agentlab(['down']);
    }
  }
  process.exit(exitCode);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
