#!/usr/bin/env node
// agent-runner: inside a sandbox, claims its job, clones the repo, runs the agent, ships log, artifacts and result.
// One file, Node builtins only: the sandbox template has Node for the agents anyway.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const LOG_CHUNK_BYTES = 256 * 1024;
const SHIP_INTERVAL_MS = 300;
const HEARTBEAT_INTERVAL_MS = 5000;
const KILL_GRACE_MS = 5000;
const REQUEST_TIMEOUT_MS = 30_000;
const GIT_ERROR_LINES = 20;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Diagnostics as one-line JSON on stderr. Never pass a token or credential here. */
function log(level, msg, fields = {}) {
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }) + '\n');
}

function parseArgs(argv) {
  const options = {
    bootstrap: process.env.AGENTLAB_BOOTSTRAP,
    stateDir: process.env.AGENTLAB_STATE_DIR,
    workDir: process.env.AGENTLAB_WORK_DIR,
    exitWhenDone: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--exit-when-done') options.exitWhenDone = true;
    else if (arg === '--bootstrap') options.bootstrap = argv[++i];
    else if (arg === '--state-dir') options.stateDir = argv[++i];
    else if (arg === '--work-dir') options.workDir = argv[++i];
    else throw new Error(`unknown argument ${arg}`);
  }
  for (const key of ['bootstrap', 'stateDir', 'workDir']) {
    if (!options[key]) throw new Error(`--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  }
  return options;
}

class PermanentError extends Error {}

const retryDeadlineMs = () => Number(process.env.AGENTLAB_RETRY_DEADLINE_SECONDS || 600) * 1000;

/**
 * One HTTP call to the host, retried on connection errors, 5xx and 429 with backoff (the host's
 * worker may be restarting); any other status is returned to the caller to interpret.
 */
async function call(method, url, { body, headers = {}, json } = {}) {
  const deadline = Date.now() + retryDeadlineMs();
  let delay = 250;
  for (;;) {
    let problem;
    try {
      const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
      if (json !== undefined) {
        init.body = JSON.stringify(json);
        init.headers['content-type'] = 'application/json';
      } else if (body !== undefined) {
        init.body = body;
        init.headers['content-type'] = 'application/octet-stream';
      }
      const res = await fetch(url, init);
      const text = await res.text();
      let parsed;
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        parsed = { raw: text };
      }
      if (res.status < 500 && res.status !== 429) return { status: res.status, body: parsed };
      problem = `HTTP ${res.status}`;
    } catch (err) {
      problem = err.cause?.code || err.name || String(err);
    }
    if (Date.now() + delay > deadline) throw new Error(`${method} ${new URL(url).pathname} failed: ${problem}`);
    log('warn', 'host call failed, retrying', { method, path: new URL(url).pathname, problem, retryInMs: delay });
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
}

function readJsonFile(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function writeJsonFile(file, value, mode = 0o600) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value), { mode });
  fs.renameSync(tmp, file);
}

/** Allowlisted clone sources: remote protocols always, local paths only where the host allows them. */
function repoUrlProblem(repo, allowLocalRepos) {
  if (typeof repo !== 'string' || repo.length === 0) return 'repository URL is empty';
  if (repo.startsWith('-')) return `repository URL "${repo}" looks like a command-line option`;
  if (/^[a-z][a-z0-9+.-]*::/i.test(repo))
    return `repository URL scheme "${repo.split('::')[0]}::" (git remote helper) is not allowed`;
  if (/^(https|ssh|git):\/\/[^/\s]+\/\S+$/i.test(repo)) return undefined;
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+$/.test(repo)) return undefined;
  if (/^file:\/\//i.test(repo) || repo.startsWith('/')) {
    return allowLocalRepos ? undefined : `local repository "${repo}" is not allowed in this sandbox`;
  }
  return `repository URL "${repo}" is not allowed: expected https://, ssh://, git:// or user@host:path`;
}

function git(args, cwd) {
  const result = spawnSync('git', ['-c', 'protocol.ext.allow=never', '-c', 'core.hooksPath=/dev/null', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error) throw new Error(`git ${args[0]} could not run: ${result.error.message}`);
  if (result.status !== 0) {
    const stderr = (result.stderr || '').trim().split('\n').slice(-GIT_ERROR_LINES).join('\n');
    throw new Error(`git ${args[0]} failed (exit ${result.status}): ${stderr}`);
  }
  return result.stdout;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Talks to the host's guest API for one job with the runner credential. */
class JobApi {
  constructor(controllerUrl, jobId, credential) {
    this.base = `${controllerUrl.replace(/\/$/, '')}/v1/jobs/${encodeURIComponent(jobId)}`;
    this.auth = { authorization: `Bearer ${credential}` };
  }

  async postLog(offset, chunk) {
    const res = await call('POST', `${this.base}/logs?offset=${offset}`, { body: chunk, headers: this.auth });
    if (res.status !== 200 && res.status !== 409)
      throw new PermanentError(`log upload rejected: HTTP ${res.status} ${res.body.error || ''}`);
    return Number(res.body.size);
  }

  async heartbeat(phase, message) {
    try {
      await fetch(`${this.base}/heartbeat`, {
        method: 'POST',
        headers: { ...this.auth, 'content-type': 'application/json' },
        body: JSON.stringify(message ? { phase, message } : { phase }),
        signal: AbortSignal.timeout(5000),
      });
    } catch {
      /* heartbeats are best effort */
    }
  }

  async putArtifact(name, content) {
    const res = await call('PUT', `${this.base}/artifacts/${encodeURIComponent(name)}`, {
      body: content,
      headers: this.auth,
    });
    if (res.status !== 200)
      throw new PermanentError(`artifact ${name} rejected: HTTP ${res.status} ${res.body.error || ''}`);
    return res.body;
  }

  async postResult(result) {
    const res = await call('POST', `${this.base}/result`, { json: result, headers: this.auth });
    if (res.status === 409) {
      log('warn', 'host says the job is already finished', { error: res.body.error });
      return;
    }
    if (res.status !== 200) throw new PermanentError(`result rejected: HTTP ${res.status} ${res.body.error || ''}`);
  }
}

/** Ships agent.log from the host's acknowledged offset, so restarts neither lose nor repeat bytes. */
class LogShipper {
  constructor(api, file) {
    this.api = api;
    this.file = file;
    this.acked = undefined;
  }

  async shipOnce() {
    if (this.acked === undefined) this.acked = await this.api.postLog(0, Buffer.alloc(0));
    let size;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return true;
    }
    while (this.acked < size) {
      const length = Math.min(LOG_CHUNK_BYTES, size - this.acked);
      const chunk = Buffer.alloc(length);
      const fd = fs.openSync(this.file, 'r');
      try {
        fs.readSync(fd, chunk, 0, length, this.acked);
      } finally {
        fs.closeSync(fd);
      }
      this.acked = await this.api.postLog(this.acked, chunk);
    }
    return this.acked >= size;
  }

  start() {
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.shipOnce();
        } catch (err) {
          log('warn', 'log shipping failed', { error: err.message });
        }
        await sleep(SHIP_INTERVAL_MS);
      }
    })();
  }

  /** Stops the background loop and ships everything written so far. */
  async flush() {
    this.stopped = true;
    if (this.loop) await this.loop;
    while (!(await this.shipOnce())) await sleep(SHIP_INTERVAL_MS);
  }
}

class Runner {
  constructor(options) {
    this.options = options;
    this.stateDir = options.stateDir;
    this.workDir = options.workDir;
    this.repoDir = path.join(options.workDir, 'repo');
    this.files = {
      claim: path.join(this.stateDir, 'claim.json'),
      task: path.join(this.stateDir, 'task.txt'),
      log: path.join(this.stateDir, 'agent.log'),
      agentPid: path.join(this.stateDir, 'agent.pid'),
      agentExit: path.join(this.stateDir, 'agent.exit'),
      agentStarted: path.join(this.stateDir, 'agent.started.json'),
      result: path.join(this.stateDir, 'result.json'),
      reported: path.join(this.stateDir, 'result.reported'),
      report: path.join(this.stateDir, 'report.json'),
      patch: path.join(this.stateDir, 'changes.patch'),
    };
  }

  async claim() {
    const cached = readJsonFile(this.files.claim);
    if (cached) {
      log('info', 'resuming with the cached claim', { jobId: cached.job ? cached.job.jobId : null });
      return cached;
    }
    const bootstrap = readJsonFile(this.options.bootstrap);
    if (!bootstrap) throw new PermanentError(`bootstrap file ${this.options.bootstrap} is missing or not JSON`);
    const res = await call('POST', `${bootstrap.controllerUrl.replace(/\/$/, '')}/v1/bootstrap`, {
      json: { token: bootstrap.token, jobId: bootstrap.jobId, vmid: bootstrap.vmid },
    });
    if (res.status !== 200)
      throw new PermanentError(`bootstrap claim refused: HTTP ${res.status} ${res.body.error || ''}`);
    const claim = {
      controllerUrl: bootstrap.controllerUrl,
      allowLocalRepos: bootstrap.allowLocalRepos === true,
      jobId: bootstrap.jobId,
      runnerCredential: res.body.runnerCredential,
      job: res.body.job,
    };
    writeJsonFile(this.files.claim, claim);
    log('info', 'bootstrap claimed', { jobId: bootstrap.jobId, hasJob: !!claim.job });
    return claim;
  }

  appendLog(line) {
    fs.appendFileSync(this.files.log, `agent-runner: ${line}\n`);
  }

  prepareRepo(job, allowLocalRepos) {
    const problem = repoUrlProblem(job.repo, allowLocalRepos);
    if (problem) throw new Error(problem);
    fs.rmSync(this.repoDir, { recursive: true, force: true });
    fs.mkdirSync(this.workDir, { recursive: true });
    git(['clone', '--no-checkout', '--', job.repo, this.repoDir], this.workDir);
    git(['fetch', 'origin', '--', job.ref || 'HEAD'], this.repoDir);
    git(['checkout', '-B', 'agentlab', 'FETCH_HEAD'], this.repoDir);
    return git(['rev-parse', 'HEAD'], this.repoDir).trim();
  }

  /** The agent writes straight to agent.log and survives a runner crash; a wrapper records its exit code. */
  startAgent(job) {
    const logFd = fs.openSync(this.files.log, 'a');
    const wrapper =
      '/bin/sh -c "$AGENTLAB_AGENT_COMMAND" < "$AGENTLAB_TASK_FILE"; code=$?; echo "$code" > "$1.tmp"; mv "$1.tmp" "$1"';
    const child = spawn('/bin/sh', ['-c', wrapper, 'agent-wrapper', this.files.agentExit], {
      cwd: this.repoDir,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: {
        ...process.env,
        AGENTLAB_AGENT_COMMAND: job.agentCommand,
        AGENTLAB_TASK_FILE: this.files.task,
        AGENTLAB_TASK: job.task,
        AGENTLAB_JOB_ID: job.jobId,
        AGENTLAB_REPO_DIR: this.repoDir,
      },
    });
    fs.closeSync(logFd);
    child.unref();
    fs.writeFileSync(this.files.agentPid, String(child.pid));
    return child.pid;
  }

  /** Waits for the agent (started by us or by an earlier runner) and returns its exit code, or 124 on timeout. */
  async waitForAgent(pid, startedAt, timeoutSeconds, api) {
    const deadline = timeoutSeconds > 0 ? startedAt + timeoutSeconds * 1000 : Infinity;
    let lastBeat = 0;
    let killedAt;
    for (;;) {
      const exit = fs.existsSync(this.files.agentExit)
        ? fs.readFileSync(this.files.agentExit, 'utf8').trim()
        : undefined;
      if (exit !== undefined && exit !== '')
        return killedAt ? { code: 124, timedOut: true } : { code: Number(exit), timedOut: false };
      if (!isAlive(pid)) return killedAt ? { code: 124, timedOut: true } : { code: null, timedOut: false };
      const now = Date.now();
      if (killedAt === undefined && now >= deadline) {
        this.appendLog(`agent timed out after ${timeoutSeconds}s; stopping it`);
        killGroup(pid, 'SIGTERM');
        killedAt = now;
      } else if (killedAt !== undefined && now - killedAt > KILL_GRACE_MS) {
        killGroup(pid, 'SIGKILL');
      }
      if (now - lastBeat >= HEARTBEAT_INTERVAL_MS) {
        lastBeat = now;
        void api.heartbeat('running');
      }
      await sleep(200);
    }
  }

  collectChanges(baseCommit) {
    git(['add', '-A'], this.repoDir);
    const patch = git(['diff', '--cached', '--binary', baseCommit], this.repoDir);
    fs.writeFileSync(this.files.patch, patch);
    return git(['rev-parse', 'HEAD'], this.repoDir).trim();
  }

  async runJob(claim, api) {
    const job = claim.job;
    const started = readJsonFile(this.files.agentStarted);
    let baseCommit = started ? started.baseCommit : undefined;
    let pid = started ? Number(fs.readFileSync(this.files.agentPid, 'utf8')) : undefined;
    const startedAt = started ? started.at : Date.now();

    if (!started) {
      fs.writeFileSync(this.files.task, job.task, { mode: 0o600 });
      await api.heartbeat('cloning');
      try {
        baseCommit = this.prepareRepo(job, claim.allowLocalRepos);
      } catch (err) {
        this.appendLog(`preparing the repository failed: ${err.message}`);
        return {
          status: 'FAILED',
          exitCode: null,
          message: err.message,
          durationSeconds: 0,
          baseCommit: null,
          headCommit: null,
        };
      }
      this.appendLog(`cloned ${job.repo} at ${job.ref || 'HEAD'} (${baseCommit}); starting the agent`);
      pid = this.startAgent(job);
      writeJsonFile(this.files.agentStarted, { at: startedAt, baseCommit });
      await api.heartbeat('running');
    } else {
      log('info', 'reattaching to the agent started by an earlier runner', { pid });
    }

    const { code, timedOut } = await this.waitForAgent(pid, startedAt, job.timeoutSeconds || 0, api);
    const durationSeconds = Math.round((Date.now() - startedAt) / 100) / 10;
    let headCommit = null;
    try {
      headCommit = this.collectChanges(baseCommit);
    } catch (err) {
      this.appendLog(`collecting the agent's changes failed: ${err.message}`);
      return {
        status: 'FAILED',
        exitCode: code,
        message: `collecting changes failed: ${err.message}`,
        durationSeconds,
        baseCommit,
        headCommit,
      };
    }
    if (timedOut)
      return {
        status: 'TIMEOUT',
        exitCode: 124,
        message: `agent timed out after ${job.timeoutSeconds}s`,
        durationSeconds,
        baseCommit,
        headCommit,
      };
    if (code === 0)
      return { status: 'COMPLETED', exitCode: 0, message: 'agent finished', durationSeconds, baseCommit, headCommit };
    if (code === null)
      return {
        status: 'FAILED',
        exitCode: null,
        message: 'the agent process disappeared without an exit code',
        durationSeconds,
        baseCommit,
        headCommit,
      };
    return {
      status: 'FAILED',
      exitCode: code,
      message: `agent exited with code ${code}`,
      durationSeconds,
      baseCommit,
      headCommit,
    };
  }

  /** Logs first, then artifacts, then the result: the host holds everything once the job is final. */
  async report(api, shipper, outcome) {
    await shipper.flush();
    fs.writeFileSync(this.files.report, JSON.stringify(outcome, null, 2) + '\n');
    let result = { status: outcome.status, exitCode: outcome.exitCode, message: outcome.message };
    try {
      await api.putArtifact('report.json', fs.readFileSync(this.files.report));
      if (fs.existsSync(this.files.patch)) await api.putArtifact('changes.patch', fs.readFileSync(this.files.patch));
      if (fs.existsSync(this.files.log)) await api.putArtifact('agent.log', fs.readFileSync(this.files.log));
    } catch (err) {
      this.appendLog(`uploading artifacts failed: ${err.message}`);
      await shipper.flush().catch(() => undefined);
      result = { status: 'FAILED', exitCode: outcome.exitCode, message: `uploading artifacts failed: ${err.message}` };
    }
    await api.postResult(result);
    fs.writeFileSync(this.files.reported, new Date().toISOString());
    log('info', 'result reported', { status: result.status, exitCode: result.exitCode });
  }

  async run() {
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    const claim = await this.claim();
    if (!claim.job) {
      log('info', 'sandbox has no job; idling');
      return;
    }
    if (fs.existsSync(this.files.reported)) {
      log('info', 'job already reported; nothing to do');
      return;
    }
    const api = new JobApi(claim.controllerUrl, claim.job.jobId, claim.runnerCredential);
    const shipper = new LogShipper(api, this.files.log);
    let outcome = readJsonFile(this.files.result);
    if (!outcome) {
      shipper.start();
      try {
        outcome = await this.runJob(claim, api);
      } catch (err) {
        this.appendLog(`runner failed: ${err.message}`);
        outcome = {
          status: 'FAILED',
          exitCode: null,
          message: `runner failed: ${err.message}`,
          durationSeconds: 0,
          baseCommit: null,
          headCommit: null,
        };
      }
      writeJsonFile(this.files.result, outcome);
    }
    await api.heartbeat('uploading');
    await this.report(api, shipper, outcome);
  }
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    log('error', err.message);
    process.exit(2);
  }
  const runner = new Runner(options);
  let failed = false;
  try {
    await runner.run();
  } catch (err) {
    failed = true;
    log('error', 'runner stopped', { error: err.message });
  }
  if (options.exitWhenDone) process.exit(failed ? 1 : 0);
  // In a sandbox the runner is the VM's main process: stay up until the host powers the sandbox off.
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setInterval(() => undefined, 1 << 30);
}

void main();
