// The real guest runner as a child process, against an in-test guest API that records every call, on real git repos.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { AGENT_COMMANDS } from '../common/agents';
import type { ClaimBootstrapResponse, GuestSecrets, JobResult } from '../common/contract';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentRunnerPath } from '../common/paths';
import { sleep } from './support/stack';

const ROOT = join(__dirname, '..');
const RUNNER = agentRunnerPath(); // the compiled runner: run `npm run build` first
const SCRIPTED_AGENT = join(ROOT, 'examples', 'agents', 'scripted-agent.sh');
const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

type Job = NonNullable<ClaimBootstrapResponse['job']>;
type Result = JobResult;

/** What the host knows about one job: every call, and the log as assembled from the offset protocol. */
class HostJob {
  readonly token = randomBytes(32).toString('hex');
  tokenUsed = false;
  bootstrapCalls = 0;
  claims = 0;
  credential?: string;
  log = Buffer.alloc(0);
  artifacts = new Map<string, Buffer>();
  results: Result[] = [];
  logSizeAtResult: number[] = [];
  heartbeats: string[] = [];
  /** Log bytes received on the wire, overlap included. */
  logBytesReceived = 0;
  jobCalls: string[] = [];
  /** Job routes fail until then: first by dropping the connection, then with 503. */
  outageUntil = 0;
  outageRefusals = 0;
  droppedLogResponses = 0;

  constructor(
    readonly jobId: string,
    readonly job: Job | null,
    readonly faults: { outageMs?: number; dropOneLogResponse?: boolean } = {},
    readonly secrets: GuestSecrets | null = null,
  ) {}

  get logText(): string {
    return this.log.toString('utf8');
  }
}

class FakeHost {
  readonly jobs = new Map<string, HostJob>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        if (!res.headersSent) reply(res, 500, { error: String(err) });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  add(jobId: string, job: Job | null, faults?: HostJob['faults'], secrets?: GuestSecrets): HostJob {
    const record = new HostJob(jobId, job, faults, secrets);
    this.jobs.set(jobId, record);
    return record;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://host');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);

    if (req.method === 'POST' && url.pathname === '/v1/bootstrap') {
      const claim = JSON.parse(body.toString('utf8')) as { token: string; jobId: string; vmid: number };
      const job = this.jobs.get(claim.jobId);
      if (!job) return reply(res, 404, { error: 'unknown job' });
      job.bootstrapCalls++;
      if (claim.token !== job.token || job.tokenUsed) return reply(res, 403, { error: 'token invalid or used' });
      job.tokenUsed = true;
      job.claims++;
      job.credential = randomBytes(32).toString('hex');
      if (job.faults.outageMs) job.outageUntil = Date.now() + job.faults.outageMs;
      return reply(res, 200, { runnerCredential: job.credential, job: job.job, secrets: job.secrets });
    }

    const m = /^\/v1\/jobs\/([^/]+)\/(logs|heartbeat|result|artifacts)(?:\/([^/]+))?$/.exec(url.pathname);
    const job = m ? this.jobs.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m || !job) return reply(res, 404, { error: 'no such route' });
    if (!job.credential || req.headers.authorization !== `Bearer ${job.credential}`)
      return reply(res, 401, { error: 'bad credential' });
    const action = m[2]!;
    job.jobCalls.push(`${req.method} ${action}`);

    if (Date.now() < job.outageUntil) {
      job.outageRefusals++;
      if (job.outageUntil - Date.now() > job.faults.outageMs! / 2) return void req.socket.destroy();
      return reply(res, 503, { error: 'restarting' });
    }

    if (req.method === 'POST' && action === 'logs') {
      const offset = Number(url.searchParams.get('offset'));
      job.logBytesReceived += body.length;
      const size = job.log.length;
      if (offset > size) return reply(res, 409, { size });
      const fresh = body.subarray(size - offset);
      job.log = Buffer.concat([job.log, fresh]);
      if (fresh.length > 0 && job.faults.dropOneLogResponse && job.droppedLogResponses === 0) {
        job.droppedLogResponses++; // the bytes are kept but the runner never hears so: it must resend, we dedupe
        return void req.socket.destroy();
      }
      return reply(res, 200, { size: job.log.length });
    }
    if (req.method === 'POST' && action === 'heartbeat') {
      job.heartbeats.push((JSON.parse(body.toString('utf8')) as { phase: string }).phase);
      return reply(res, 200, { ok: true });
    }
    if (req.method === 'PUT' && action === 'artifacts' && m[3]) {
      job.artifacts.set(decodeURIComponent(m[3]), body);
      return reply(res, 200, { name: m[3], size: body.length, sha256: 'x' });
    }
    if (req.method === 'POST' && action === 'result') {
      if (job.results.length > 0) return reply(res, 409, { error: 'already finished' });
      job.results.push(JSON.parse(body.toString('utf8')) as Result);
      job.logSizeAtResult.push(job.log.length);
      return reply(res, 200, { accepted: true });
    }
    return reply(res, 405, { error: 'method not allowed' });
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// ----------------------------------------------------------------------------------------------------

let tmp: string;
let host: FakeHost;
let origin: string;
let originHead: string;
let gitShimDir: string;
const sandboxes: Sandbox[] = [];
const runners = new Set<ChildProcess>();

const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

interface Sandbox {
  dir: string;
  bootstrap: string;
  stateDir: string;
  workDir: string;
  repoDir: string;
  gitCalls: string;
  host: HostJob;
  /** Set when the job carries secrets: the tmpfs stand-in, apart from the state dir. */
  secretsDir?: string;
  /** The runner's --agent-user. */
  agentUser?: string;
}

let counter = 0;
function sandbox(
  job: Omit<Job, 'jobId' | 'ref' | 'timeoutSeconds'> & Partial<Job>,
  options: { allowLocalRepos?: boolean; faults?: HostJob['faults']; secrets?: GuestSecrets; agentUser?: string } = {},
): Sandbox {
  const jobId = `job-${++counter}`;
  const dir = join(tmp, jobId);
  mkdirSync(join(dir, 'cloud-init'), { recursive: true });
  const record = host.add(jobId, { jobId, ref: 'main', timeoutSeconds: 0, ...job }, options.faults, options.secrets);
  const bootstrap = join(dir, 'cloud-init', 'bootstrap.json');
  const snippet = { controllerUrl: host.url, jobId, vmid: 7000 + counter, token: record.token };
  writeFileSync(bootstrap, JSON.stringify({ ...snippet, allowLocalRepos: options.allowLocalRepos ?? true }));
  const box = {
    dir,
    bootstrap,
    stateDir: join(dir, 'state'),
    workDir: join(dir, 'work'),
    repoDir: join(dir, 'work', 'repo'),
    gitCalls: join(dir, 'git-calls.txt'),
    host: record,
    secretsDir: options.secrets ? join(dir, 'secrets') : undefined,
    agentUser: options.agentUser,
  };
  sandboxes.push(box);
  return box;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function startRunner(box: Sandbox, bootstrap = box.bootstrap): { child: ChildProcess; exit: Promise<Exit> } {
  // Its own process group, so a test can kill the runner the way a crashing service is killed: all of it.
  const child = spawn(
    process.execPath,
    [
      RUNNER,
      ...['--bootstrap', bootstrap, '--state-dir', box.stateDir, '--work-dir', box.workDir, '--exit-when-done'],
      ...(box.secretsDir ? ['--secrets-dir', box.secretsDir] : []),
      ...(box.agentUser ? ['--agent-user', box.agentUser] : []),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
      env: {
        ...process.env,
        PATH: `${gitShimDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        GIT_SHIM_LOG: box.gitCalls,
        AGENTLAB_RETRY_DEADLINE_SECONDS: '15',
      },
    },
  );
  runners.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exit = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      runners.delete(child);
      resolve({ code, signal, stderr });
    }),
  );
  return { child, exit };
}

async function runToEnd(box: Sandbox, bootstrap?: string): Promise<Exit> {
  const { child, exit } = startRunner(box, bootstrap);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const done = await exit;
  clearTimeout(timer);
  return done;
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Live (non-zombie) processes whose process group is `pgid`. */
function liveGroupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

const agentPidOf = (box: Sandbox): number => Number(readFileSync(join(box.stateDir, 'agent.pid'), 'utf8').trim());

/** The scripted agent's exact output for a task, stdout and stderr as they interleave in one file. */
const scriptedOutput = (box: Sandbox, task: string, sleepSeconds?: number): string =>
  `scripted-agent: starting in ${box.repoDir}\n` +
  `scripted-agent: task: ${task}\n` +
  'scripted-agent: edited README.md and created NOTES.md\n' +
  'scripted-agent: a line on stderr\n' +
  (sleepSeconds ? `scripted-agent: sleeping ${sleepSeconds}s\n` : '') +
  'scripted-agent: done\n';

beforeAll(async () => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'agentlab-guest-runner-')));
  origin = join(tmp, 'origin');
  mkdirSync(origin);
  git(origin, 'init', '--quiet', '--initial-branch=main');
  writeFileSync(join(origin, 'README.md'), '# hello\n');
  writeFileSync(join(origin, 'greet.sh'), 'echo hello\n');
  git(origin, 'add', '-A');
  git(origin, 'commit', '--quiet', '-m', 'initial');
  originHead = git(origin, 'rev-parse', 'HEAD');

  // Every git the runner starts goes through this shim, so a test can tell whether git ran, and how.
  gitShimDir = join(tmp, 'bin');
  mkdirSync(gitShimDir);
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  writeFileSync(
    join(gitShimDir, 'git'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> "$GIT_SHIM_LOG"\nexec ${sh(realGit)} "$@"\n`,
  );
  chmodSync(join(gitShimDir, 'git'), 0o755);

  host = new FakeHost();
  await host.start();
});

afterAll(async () => {
  for (const child of runners) child.kill('SIGKILL');
  for (const box of sandboxes) {
    if (!existsSync(join(box.stateDir, 'agent.pid'))) continue;
    for (const pid of liveGroupMembers(agentPidOf(box))) process.kill(pid, 'SIGKILL');
  }
  await host.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('guest agent-runner', () => {
  test('success: one claim, the exact log, COMPLETED, the patch and the report', async () => {
    // Shell metacharacters in the task prove it never passes through a shell string.
    const task = 'Add a greeting; $(touch pwned-by-task) `touch pwned-by-task` "quoted" \\n & done';
    const box = sandbox({ repo: origin, task, agentCommand: sh(SCRIPTED_AGENT) });

    const exit = await runToEnd(box);
    expect(exit).toMatchObject({ code: 0, signal: null });
    const job = box.host;
    expect(job.bootstrapCalls).toBe(1);
    expect(job.claims).toBe(1);

    const expected = scriptedOutput(box, task);
    expect(job.logText).toBe(expected);
    expect(readFileSync(join(box.stateDir, 'agent.log'), 'utf8')).toBe(expected);
    expect(job.artifacts.get('agent.log')?.toString('utf8')).toBe(expected);

    expect(job.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    expect(job.logSizeAtResult).toEqual([Buffer.byteLength(expected)]); // the whole log before the result
    expect(job.logBytesReceived).toBe(Buffer.byteLength(expected)); // and each byte sent once
    expect(job.jobCalls[job.jobCalls.length - 1]).toBe('POST result');
    expect(job.heartbeats).toEqual(expect.arrayContaining(['cloning', 'running']));

    const patch = job.artifacts.get('changes.patch')!.toString('utf8');
    expect(patch).toContain('diff --git a/README.md b/README.md');
    expect(patch).toContain(`+Agent note: ${task}`);
    expect(patch).toMatch(/diff --git a\/NOTES\.md b\/NOTES\.md\nnew file mode/);
    expect(patch).toContain(`+Task: ${task}`);
    expect(patch).not.toContain('pwned-by-task\n');
    expect(existsSync(join(box.repoDir, 'pwned-by-task'))).toBe(false);
    // The patch is usable: it applies to a fresh clone of the base commit.
    const check = join(tmp, 'apply-check');
    git(tmp, 'clone', '--quiet', origin, check);
    execFileSync('git', ['apply', '--check', '-'], { cwd: check, input: patch });

    const report = JSON.parse(job.artifacts.get('report.json')!.toString('utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({
      status: 'COMPLETED',
      exitCode: 0,
      baseCommit: originHead,
      headCommit: originHead,
      durationSeconds: expect.any(Number),
      message: expect.any(String),
    });

    // The credential is stored privately and never printed.
    expect(statSync(box.stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(box.stateDir, 'claim.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(box.stateDir, 'claim.json'), 'utf8'))).toMatchObject({
      runnerCredential: job.credential,
      controllerUrl: host.url,
      job: { jobId: job.jobId },
    });
    expect(exit.stderr).not.toContain(job.token);
    expect(exit.stderr).not.toContain(job.credential!);
    for (const line of exit.stderr.trim().split('\n')) {
      expect(JSON.parse(line)).toMatchObject({
        ts: expect.any(String),
        level: expect.any(String),
        msg: expect.any(String),
      });
    }
    // git ran hardened.
    const clone = readFileSync(box.gitCalls, 'utf8')
      .split('\n')
      .find((l) => l.includes(' clone '))!;
    expect(clone).toContain('protocol.ext.allow=never');
    expect(clone).toContain('core.hooksPath=/dev/null');
    expect(clone).toContain(`-- ${origin} ${box.repoDir}`);
  });

  test('the task reaches the agent as a file, an environment variable and stdin', async () => {
    const task = 'line one\nline "two" $HOME `id`';
    const agent =
      'cat > from-stdin.txt; printf %s "$AGENTLAB_TASK" > from-env.txt; cp "$AGENTLAB_TASK_FILE" from-file.txt; ' +
      'printf "%s\\n" "$AGENTLAB_JOB_ID" "$AGENTLAB_REPO_DIR" "$PWD"';
    const box = sandbox({ repo: `file://${origin}`, task, agentCommand: agent });

    expect((await runToEnd(box)).code).toBe(0);
    for (const file of ['from-stdin.txt', 'from-env.txt', 'from-file.txt']) {
      expect(readFileSync(join(box.repoDir, file), 'utf8')).toBe(task);
    }
    expect(box.host.logText).toBe(`${box.host.jobId}\n${box.repoDir}\n${box.repoDir}\n`);
    expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    expect(box.host.artifacts.get('changes.patch')!.toString('utf8')).toContain('b/from-stdin.txt');
  });

  test('a failing agent gives FAILED with its exit code, and its changes still come back', async () => {
    const box = sandbox({ repo: origin, task: 'fail', agentCommand: `SCRIPTED_AGENT_EXIT=3 ${sh(SCRIPTED_AGENT)}` });

    expect((await runToEnd(box)).code).toBe(0);
    expect(box.host.results).toEqual([{ status: 'FAILED', exitCode: 3, message: 'agent exited with code 3' }]);
    expect(box.host.logText).toBe(scriptedOutput(box, 'fail'));
    expect(box.host.artifacts.get('changes.patch')!.toString('utf8')).toContain('NOTES.md');
    expect(JSON.parse(box.host.artifacts.get('report.json')!.toString('utf8'))).toMatchObject({
      status: 'FAILED',
      exitCode: 3,
    });
  });

  test("a bad ref fails within seconds with git's error, and the agent never starts", async () => {
    const box = sandbox({ repo: origin, ref: 'no-such-branch', task: 'x', agentCommand: sh(SCRIPTED_AGENT) });

    const started = Date.now();
    expect((await runToEnd(box)).code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(box.host.results).toHaveLength(1);
    const result = box.host.results[0]!;
    expect(result).toMatchObject({ status: 'FAILED', exitCode: null });
    expect(result.message).toMatch(/couldn't find remote ref no-such-branch/);
    expect(box.host.logText).toContain("couldn't find remote ref no-such-branch"); // visible in the log too
    expect(box.host.logText).not.toContain('scripted-agent');
    expect(existsSync(join(box.stateDir, 'agent.pid'))).toBe(false);
    expect(box.host.logSizeAtResult).toEqual([box.host.log.length]);
  });

  test.each([
    ['ext::sh -c touch% PWNED', true, /uses the git remote helper "ext::", which is not allowed/],
    ['--upload-pack=touch PWNED', true, /looks like a command-line option/],
    ['file://ORIGIN', false, /local repository "file:\/\/.*" needs a local-backend profile/],
    ['ORIGIN', false, /local repository ".*" needs a local-backend profile/],
    ['http://example.invalid/repo.git', true, /the scheme "http:\/\/" is not allowed/],
    [
      'https://user:hunter2@example.invalid/repo.git',
      true,
      /"https:\/\/\*\*\*@example\.invalid\/repo\.git" carries credentials/,
    ],
  ])('repo %j (allowLocalRepos=%s) is rejected before git runs', async (repoTemplate, allowLocalRepos, message) => {
    const pwned = join(tmp, `pwned-${counter + 1}`);
    const repo = repoTemplate.replace('PWNED', pwned).replace('ORIGIN', origin);
    const box = sandbox({ repo, task: 'x', agentCommand: sh(SCRIPTED_AGENT) }, { allowLocalRepos });

    expect((await runToEnd(box)).code).toBe(0);
    expect(box.host.results).toHaveLength(1);
    expect(box.host.results[0]).toMatchObject({
      status: 'FAILED',
      exitCode: null,
      message: expect.stringMatching(message),
    });
    expect(box.host.logText).toMatch(message);
    expect(existsSync(box.gitCalls)).toBe(false); // git never ran
    expect(existsSync(pwned)).toBe(false);
    expect(existsSync(box.repoDir)).toBe(false);
  });

  test('a timeout stops the agent process group: TIMEOUT, exit code 124', async () => {
    const box = sandbox({ repo: origin, task: 'x', agentCommand: 'echo working; sleep 30', timeoutSeconds: 1 });

    const started = Date.now();
    expect((await runToEnd(box)).code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(box.host.results).toEqual([{ status: 'TIMEOUT', exitCode: 124, message: expect.any(String) }]);
    expect(box.host.logText).toBe('working\nagent-runner: agent timed out after 1s; stopping it\n');
    expect(liveGroupMembers(agentPidOf(box))).toEqual([]); // the sleep is gone too
  });

  test('the host down for a while after the claim: the log arrives complete and exactly once', async () => {
    const box = sandbox(
      { repo: origin, task: 'survive an outage', agentCommand: sh(SCRIPTED_AGENT) },
      { faults: { outageMs: 1500, dropOneLogResponse: true } },
    );

    const exit = await runToEnd(box);
    expect(exit.code).toBe(0);
    expect(box.host.outageRefusals).toBeGreaterThan(0);
    expect(box.host.droppedLogResponses).toBe(1);
    expect(exit.stderr).toContain('retrying');
    expect(box.host.logText).toBe(scriptedOutput(box, 'survive an outage'));
    expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    expect(box.host.logSizeAtResult).toEqual([box.host.log.length]);
    expect(box.host.artifacts.get('changes.patch')!.toString('utf8')).toContain('+Agent note: survive an outage');
  });

  test('runner SIGKILLed while the agent runs: the restarted runner reattaches, nothing twice', async () => {
    const task = 'survive a runner crash';
    const box = sandbox({ repo: origin, task, agentCommand: `SCRIPTED_AGENT_SLEEP=2 ${sh(SCRIPTED_AGENT)}` });

    const first = startRunner(box);
    await waitFor('the sleeping line at the host', () => box.host.logText.includes('sleeping 2s'));
    const agentPid = agentPidOf(box);
    process.kill(-first.child.pid!, 'SIGKILL'); // the runner's whole process group
    expect((await first.exit).signal).toBe('SIGKILL');
    expect(liveGroupMembers(agentPid).length).toBeGreaterThan(0); // the agent outlived its runner
    expect(box.host.results).toEqual([]);

    const second = await runToEnd(box);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('reattaching');
    expect(box.host.bootstrapCalls).toBe(1); // the restart did not claim again
    expect(agentPidOf(box)).toBe(agentPid);
    const expected = scriptedOutput(box, task, 2);
    expect(box.host.logText).toBe(expected); // nothing lost, nothing twice
    expect(box.host.logBytesReceived).toBe(Buffer.byteLength(expected)); // resumed from the host's offset
    expect(box.host.logText.split('scripted-agent: starting').length - 1).toBe(1);
    expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    expect(box.host.logSizeAtResult).toEqual([Buffer.byteLength(expected)]);
    const patch = box.host.artifacts.get('changes.patch')!.toString('utf8');
    expect(patch.split(`+Agent note: ${task}`).length - 1).toBe(1);
  });

  test('a sandbox without a job claims once and exits; a used token is refused without hanging', async () => {
    const box = sandbox({ repo: origin, task: 'x', agentCommand: 'true' });
    host.jobs.set(box.host.jobId, new HostJob(box.host.jobId, null));
    const job = host.jobs.get(box.host.jobId)!;
    writeFileSync(
      box.bootstrap,
      JSON.stringify({ controllerUrl: host.url, jobId: job.jobId, vmid: 7999, token: job.token }),
    );

    const snippet = readFileSync(box.bootstrap);
    expect((await runToEnd(box)).code).toBe(0);
    expect(job.claims).toBe(1);
    expect(job.jobCalls).toEqual([]);
    expect(existsSync(box.bootstrap)).toBe(false); // the spent token does not stay on the guest's disk
    expect((await runToEnd(box)).code).toBe(0); // a restart finds claim.json: no second claim
    expect(job.bootstrapCalls).toBe(1);

    writeFileSync(box.bootstrap, snippet); // a copy of the token kept somewhere else
    const other = { ...box, stateDir: join(box.dir, 'state-2'), workDir: join(box.dir, 'work-2') };
    const refused = await runToEnd(other);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('HTTP 403');
    expect(job.claims).toBe(1);
  });

  test('secrets: the agent gets env, env file and git askpass; the log says [REDACTED]; all wiped at the end', async () => {
    const apiKey = `sk-${randomBytes(12).toString('hex')}`;
    const token = `ghp_${randomBytes(16).toString('hex')}`;
    const short = 'abc12'; // under 6 characters: not redacted (it would redact ordinary words)
    // Printed whole, split across two writes with a pause (the redactor must hold the first half back),
    // and through git's askpass as a credential helper would.
    const agent = [
      'printf "key=%s\\n" "$API_KEY"',
      'printf "%s" "$(printf %s "$API_KEY" | cut -c1-10)"; sleep 0.3; printf "%s\\n" "$(printf %s "$API_KEY" | cut -c11-)"',
      'printf "token=%s\\n" "$("$GIT_ASKPASS" "Password for https://example.invalid: ")"',
      'printf "user=%s short=%s\\n" "$("$GIT_ASKPASS" "Username for https://example.invalid: ")" "$SHORT"',
      '. "$AGENTLAB_ENV_FILE"; printf "%s" "$API_KEY" | sha256sum | cut -c1-64 > key.sha256',
      'printf "ssh=%s\\n" "$GIT_SSH_COMMAND"',
    ].join('\n');
    const secrets: GuestSecrets = {
      env: { API_KEY: apiKey, SHORT: short },
      git: { username: 'robot', token },
    };
    const box = sandbox({ repo: origin, task: 'use the secrets', agentCommand: agent }, { secrets });

    const exit = await runToEnd(box);
    expect(exit.code).toBe(0);
    const log = box.host.logText;
    expect(log).toBe(`key=[REDACTED]\n[REDACTED]\ntoken=[REDACTED]\nuser=robot short=${short}\nssh=\n`);
    expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    // The agent saw the real value (the hash of what it sourced from the env file).
    const { createHash } = await import('node:crypto');
    expect(readFileSync(join(box.repoDir, 'key.sha256'), 'utf8').trim()).toBe(
      createHash('sha256').update(apiKey).digest('hex'),
    );
    for (const text of [log, exit.stderr, readFileSync(join(box.stateDir, 'agent.log'), 'utf8')]) {
      expect(text).not.toContain(apiKey);
      expect(text).not.toContain(token);
    }
    for (const artifact of box.host.artifacts.values()) {
      expect(artifact.toString('utf8')).not.toContain(apiKey);
      expect(artifact.toString('utf8')).not.toContain(token);
    }
    // Wiped: no secret file left, and the stored claim keeps only what delivery needs.
    expect(readdirSync(box.secretsDir!).sort()).toEqual(['claim.json']);
    const claim = readFileSync(join(box.secretsDir!, 'claim.json'), 'utf8');
    expect(claim).not.toContain(apiKey);
    expect(claim).not.toContain(token);
    expect(JSON.parse(claim)).toMatchObject({ secrets: null, secretsWiped: true });
    expect(statSync(box.secretsDir!).mode & 0o777).toBe(0o700);
  });

  test("--agent-user: the agent runs unprivileged with its checkout, home and secrets, not the runner's", async () => {
    const apiKey = `sk-${randomBytes(12).toString('hex')}`;
    const agent = [
      'printf "uid=%s home=%s user=%s\\n" "$(id -u)" "$HOME" "$USER"',
      '. "$AGENTLAB_ENV_FILE" && printf "env-file=%s\\n" "${#API_KEY}"',
      'printf "task=%s\\n" "$(cat "$AGENTLAB_TASK_FILE")"',
      'mkdir -p "$HOME/.config/agent" && echo ok > "$HOME/.config/agent/state" && echo home-writable',
      'runner="$(dirname "$(dirname "$AGENTLAB_ENV_FILE")")"', // the runner's secrets dir
      'test -f "$runner/claim.json" && { cat "$runner/claim.json" 2>/dev/null || echo claim-unreadable; }',
      'ls "$runner" 2>/dev/null || echo secrets-unlistable',
      'echo "by the agent" > AGENT.md',
    ].join('\n');
    // mkdtemp made the test's directory 0700: open the path to the agent user as a VM's would be.
    chmodSync(tmp, 0o711);
    const box = sandbox(
      { repo: origin, task: 'unprivileged', agentCommand: agent },
      { secrets: { env: { API_KEY: apiKey } }, agentUser: 'nobody' },
    );
    mkdirSync(box.dir, { recursive: true, mode: 0o711 });
    const exit = await runToEnd(box);
    expect(exit.code).toBe(0);
    const home = join(box.secretsDir!, 'agent', 'home');
    expect(box.host.logText).toBe(
      [
        `uid=65534 home=${home} user=nobody`,
        `env-file=${apiKey.length}`,
        'task=unprivileged',
        'home-writable',
        'claim-unreadable',
        'secrets-unlistable',
        '',
      ].join('\n'),
    );
    expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    // The runner collected the agent's change from a checkout the agent user owns.
    expect(box.host.artifacts.get('changes.patch')!.toString('utf8')).toContain('+by the agent');
    expect(statSync(box.repoDir).uid).toBe(65534);
    // Its home went with the other secrets.
    expect(readdirSync(box.secretsDir!)).toEqual(['claim.json']);
  });

  test('secrets: an SSH key is used with pinned host keys only, and files are private while the agent runs', async () => {
    const key = `-----BEGIN OPENSSH PRIVATE KEY-----\n${randomBytes(48).toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
    const agent = [
      'printf "%s\\n" "$GIT_SSH_COMMAND"',
      'd=$(dirname "$AGENTLAB_ENV_FILE")',
      'stat -c "%a %n" "$AGENTLAB_ENV_FILE" "$d/ssh/id" "$d/ssh/known_hosts" > ../modes.txt',
    ].join('\n');
    const secrets: GuestSecrets = {
      env: {},
      git: { sshPrivateKey: key, knownHosts: 'git.example.invalid ssh-ed25519 AAAA' },
    };
    const box = sandbox({ repo: origin, task: 'ssh', agentCommand: agent }, { secrets });

    expect((await runToEnd(box)).code).toBe(0);
    const sshCommand = box.host.logText.trim();
    expect(sshCommand).toContain('-o StrictHostKeyChecking=yes');
    expect(sshCommand).toContain('-o IdentitiesOnly=yes');
    expect(sshCommand).toMatch(/-o UserKnownHostsFile='[^']+\/ssh\/known_hosts'/);
    const modes = readFileSync(join(box.workDir, 'modes.txt'), 'utf8').trim().split('\n');
    expect(modes).toHaveLength(3);
    for (const line of modes) expect(line).toMatch(/^600 /);
    expect(box.host.logText).not.toContain('PRIVATE KEY');
    expect(readdirSync(box.secretsDir!)).toEqual(['claim.json']);
  });

  test('secrets the agent writes into files: the patch says [REDACTED] instead, the report counts, the result says so', async () => {
    const apiKey = `sk-${randomBytes(12).toString('hex')}`;
    const token = `ghp_${randomBytes(16).toString('hex')}`;
    const certBody = randomBytes(30).toString('base64');
    const cert = `-----BEGIN TEST CERT-----\n${certBody}\n-----END TEST CERT-----`;
    // A tracked file and new ones: a value as is, a multi-line value as lines of its own, and inside JSON.
    const agent = [
      'printf "key=%s\\n" "$API_KEY" >> README.md',
      'tok=$("$GIT_ASKPASS" "Password for https://example.invalid: ")',
      'printf "token=%s\\nkey=%s caf\\351\\n" "$tok" "$API_KEY" > creds.txt', // not UTF-8: bytes pass as they are
      'printf "%s\\n" "$CERT" > cert.pem',
      `printf "%s\\n" ${sh(JSON.stringify({ cert }))} > settings.json`,
    ].join('\n');
    const secrets: GuestSecrets = { env: { API_KEY: apiKey, CERT: cert }, git: { username: 'robot', token } };
    const box = sandbox({ repo: origin, task: 'leak', agentCommand: agent }, { secrets });

    expect((await runToEnd(box)).code).toBe(0);
    expect(readFileSync(join(box.repoDir, 'creds.txt'), 'latin1')).toBe(`token=${token}\nkey=${apiKey} caf\xe9\n`);
    const bytes = box.host.artifacts.get('changes.patch')!;
    expect(bytes.includes(Buffer.from('+token=[REDACTED]\n+key=[REDACTED] caf\xe9\n', 'latin1'))).toBe(true);
    const patch = bytes.toString('utf8');
    for (const value of [apiKey, token, certBody, JSON.stringify(cert)]) expect(patch).not.toContain(value);
    expect(patch).toContain('+++ b/README.md\n@@ -1 +1,2 @@\n # hello\n+key=[REDACTED]\n');
    // Line by line, so the hunk keeps its line count.
    expect(patch).toContain('+++ b/cert.pem\n@@ -0,0 +1,3 @@\n+[REDACTED]\n+[REDACTED]\n+[REDACTED]\n');
    expect(patch).toContain('+{"cert":"[REDACTED]"}\n');
    // The blob ids of a redacted file hash its clear content: they are not in the patch.
    expect(patch).not.toContain(git(box.repoDir, 'rev-parse', ':creds.txt').slice(0, 7));
    expect(patch).toContain('diff --git a/creds.txt b/creds.txt\nnew file mode 100644\n--- /dev/null\n');
    // Only added lines were redacted here: the hunks stay well-formed and apply, writing [REDACTED].
    const check = join(tmp, 'apply-check-redacted');
    git(tmp, 'clone', '--quiet', origin, check);
    execFileSync('git', ['apply', '-'], { cwd: check, input: bytes });
    expect(readFileSync(join(check, 'cert.pem'), 'utf8')).toBe('[REDACTED]\n[REDACTED]\n[REDACTED]\n');

    const summary =
      'changes.patch: 5 secret values replaced with [REDACTED], so it will not apply as written at those places';
    expect(JSON.parse(box.host.artifacts.get('report.json')!.toString('utf8'))).toMatchObject({
      patchRedactions: 5,
      patchFilesWithheld: [],
    });
    expect(box.host.results).toEqual([
      { status: 'COMPLETED', exitCode: 0, message: `agent exited with code 0; ${summary}` },
    ]);
    expect(box.host.logText).toBe(`agent-runner: ${summary}\n`);
    // No clear copy of the patch (or anything else) was left on the guest's disk.
    expect(readFileSync(join(box.stateDir, 'changes.patch')).equals(bytes)).toBe(true);
    for (const name of readdirSync(box.stateDir)) {
      const text = readFileSync(join(box.stateDir, name), 'utf8');
      for (const value of [apiKey, token, certBody])
        expect({ name, leaks: text.includes(value) }).toEqual({ name, leaks: false });
    }
  });

  test("secrets the agent does not write: the patch is byte for byte git's, still applies, and counts 0", async () => {
    const secrets: GuestSecrets = {
      env: { API_KEY: `sk-${randomBytes(12).toString('hex')}` },
      git: { token: 'ghp_unused-token' },
    };
    const agent = `${sh(SCRIPTED_AGENT)} && printf 'bin\\000ary' > data.bin && printf 'caf\\351\\n' > latin1.txt`;
    const box = sandbox({ repo: origin, task: 'no leak', agentCommand: agent }, { secrets });

    expect((await runToEnd(box)).code).toBe(0);
    const patch = box.host.artifacts.get('changes.patch')!;
    const own = execFileSync(
      'git',
      ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', '--no-textconv', originHead, '--'],
      { cwd: box.repoDir },
    );
    expect(patch.toString('utf8')).toContain('GIT binary patch');
    expect(patch.equals(own)).toBe(true);
    const check = join(tmp, 'apply-check-secrets');
    git(tmp, 'clone', '--quiet', origin, check);
    execFileSync('git', ['apply', '--check', '-'], { cwd: check, input: patch });
    expect(JSON.parse(box.host.artifacts.get('report.json')!.toString('utf8'))).toMatchObject({
      patchRedactions: 0,
      patchFilesWithheld: [],
    });
    expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: 'agent exited with code 0' }]);
    expect(box.host.logText).toBe(scriptedOutput(box, 'no leak'));
  });

  test('a binary file holding a secret is left out of the patch (base85 hides it from search) and listed', async () => {
    const apiKey = `sk-${randomBytes(12).toString('hex')}`;
    const agent = [
      'printf "bin\\000%s" "$API_KEY" > secret.bin',
      `printf %s "$API_KEY" | sed 's/./&\\n/g' | tr '\\n' '\\000' > utf16.txt`, // UTF-16LE: git takes it for binary
      "printf 'bin\\000ary' > plain.bin",
      'echo changed >> README.md',
    ].join('\n');
    const box = sandbox({ repo: origin, task: 'x', agentCommand: agent }, { secrets: { env: { API_KEY: apiKey } } });

    expect((await runToEnd(box)).code).toBe(0);
    const patch = box.host.artifacts.get('changes.patch')!.toString('utf8');
    expect(patch).not.toContain('secret.bin');
    expect(patch).not.toContain('utf16.txt');
    expect(patch).toContain('diff --git a/plain.bin b/plain.bin');
    expect(patch).toContain('+changed');
    const check = join(tmp, 'apply-check-binary');
    git(tmp, 'clone', '--quiet', origin, check);
    execFileSync('git', ['apply', '--check', '-'], { cwd: check, input: patch }); // the rest still applies

    const summary = 'changes.patch: 2 binary files holding a secret left out';
    expect(JSON.parse(box.host.artifacts.get('report.json')!.toString('utf8'))).toMatchObject({
      patchRedactions: 0,
      patchFilesWithheld: ['secret.bin', 'utf16.txt'],
    });
    expect(box.host.results).toEqual([
      { status: 'COMPLETED', exitCode: 0, message: `agent exited with code 0; ${summary}` },
    ]);
    expect(box.host.logText).toBe(`agent-runner: ${summary}: secret.bin, utf16.txt\n`);
  });

  test("git config the agent leaves behind (clean filter, external diff) never runs in the runner's git", async () => {
    const agent = [
      'git config filter.evil.clean "touch ../pwned-by-filter; cat"',
      'git config diff.external "touch ../pwned-by-diff; true"',
      'git config core.pager "touch ../pwned-by-pager; cat"',
      'printf "* filter=evil\\n" > .gitattributes',
      'echo changed >> README.md',
    ].join('\n');
    const box = sandbox({ repo: origin, task: 'x', agentCommand: agent });
    expect((await runToEnd(box)).code).toBe(0);
    for (const marker of ['pwned-by-filter', 'pwned-by-diff', 'pwned-by-pager']) {
      expect({ marker, exists: existsSync(join(box.workDir, marker)) }).toEqual({ marker, exists: false });
    }
    const patch = box.host.artifacts.get('changes.patch')!.toString('utf8');
    expect(patch).toContain('+changed');
    expect(patch).toContain('b/.gitattributes');
  });
});

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('known agents', () => {
  test('an agent missing from the sandbox: FAILED before anything runs, naming the command that installs it', async () => {
    // This PATH has no tools directory, so no `codex` (the stand-ins of the presets test are named after kinds).
    rmSync(join(gitShimDir, 'codex'), { force: true });
    const box = sandbox({ repo: origin, task: 'x', agentCommand: AGENT_COMMANDS.codex, agentKind: 'codex' });
    expect((await runToEnd(box)).code).toBe(0);
    expect(box.host.results).toEqual([
      {
        status: 'FAILED',
        exitCode: null,
        message:
          'Codex (codex) is not installed in this sandbox: install it on the worker host with `agentlab agents install` ' +
          '(Proxmox: rebuild the template with scripts/create_template.sh)',
      },
    ]);
    expect(existsSync(box.repoDir)).toBe(false); // not even cloned
  });
});

describe('agent presets', () => {
  test.each(Object.entries(AGENT_COMMANDS))(
    '%s runs non-interactively with the task, unparsed by any shell',
    async (kind, command) => {
      // A stand-in binary of that name that records its argv and stdin.
      writeFileSync(
        join(gitShimDir, kind),
        '#!/bin/sh\nfor a in "$@"; do printf "arg:%s\\n" "$a"; done\nprintf "stdin:%s\\n" "$(cat)"\n',
      );
      chmodSync(join(gitShimDir, kind), 0o755);
      const task = 'fix it; $(touch pwned) `id` "q"';
      const box = sandbox({ repo: origin, task, agentCommand: command });
      expect((await runToEnd(box)).code).toBe(0);
      const log = box.host.logText;
      // OpenCode takes the task as its last argument, whole.
      if (kind === 'opencode')
        expect(log).toMatch(new RegExp(`^arg:run\\n(arg:[^\\n]*\\n)*arg:${escape(task)}\\nstdin:`));
      else expect(log).toContain(`stdin:${task}\n`);
      expect(log).not.toContain('arg:-i'); // nothing interactive
      expect(existsSync(join(box.repoDir, 'pwned'))).toBe(false);
      expect(box.host.results).toEqual([{ status: 'COMPLETED', exitCode: 0, message: expect.any(String) }]);
    },
  );
});

describe('redaction', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runner = require(RUNNER) as {
    redactStream(values: string[], input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<void>;
    secretValues(secrets: GuestSecrets | null): string[];
  };

  async function redactInChunks(values: string[], chunks: string[]): Promise<string> {
    const { PassThrough } = await import('node:stream');
    const input = new PassThrough();
    const output = new PassThrough();
    const out: Buffer[] = [];
    output.on('data', (d: Buffer) => out.push(d));
    const done = runner.redactStream(values, input, output);
    for (const chunk of chunks) {
      input.write(chunk);
      await sleep(5);
    }
    input.end();
    await done;
    return Buffer.concat(out).toString('utf8');
  }

  test('values split at every possible boundary are still redacted; other text passes byte for byte', async () => {
    const secret = 'hunter2-secret-value';
    const text = `before ${secret} middle hunter2-se after ${secret}${secret} end h`;
    for (let cut = 1; cut < text.length; cut++) {
      expect(await redactInChunks([secret], [text.slice(0, cut), text.slice(cut)])).toBe(
        'before [REDACTED] middle hunter2-se after [REDACTED][REDACTED] end h',
      );
    }
    expect(await redactInChunks([secret], text.split(''))).toBe(
      'before [REDACTED] middle hunter2-se after [REDACTED][REDACTED] end h',
    );
  });

  test('what counts as a secret: env values, token, key lines, settings credentials; 6 characters or more', () => {
    const values = runner.secretValues({
      env: { A: 'longvalue1', B: 'short' },
      git: { token: 'tok-123456' },
      agent: { claudeSettingsJson: JSON.stringify({ env: { ANTHROPIC_API_KEY: 'sk-ant-xyz' }, theme: 'darkmode' }) },
    });
    expect(values).toEqual(expect.arrayContaining(['longvalue1', 'tok-123456', 'sk-ant-xyz']));
    expect(values).not.toContain('short');
    expect(values).not.toContain('darkmode');
  });
});
