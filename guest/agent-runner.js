#!/usr/bin/env node
// agent-runner: inside a sandbox, claims its job, clones the repo, runs the agent, ships log, artifacts and result.
// One file, Node builtins only: the sandbox template has Node for the agents anyway. Every step leaves a
// file in the state dir, so a runner that is killed and restarted carries on where the last one stopped.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { isCommitId, isLocalRepo, refProblem, repoUrlProblem } = require('./git-input');
const { agentBin, agentError, agentTitle, agentUsage, isAgentKind, prepareAgent } = require('./agents');

const LOG_CHUNK_BYTES = 256 * 1024;
const SHIP_INTERVAL_MS = 300;
const HEARTBEAT_INTERVAL_MS = 5000;
const POLL_MS = 200;
const KILL_GRACE_MS = 5000;
const REQUEST_TIMEOUT_MS = 60_000;
const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 5000;
const GIT_TIMEOUT_MS = 30 * 60 * 1000;
const GIT_ERROR_LINES = 20;
const IDLE_RETRY_MS = 10_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Diagnostics as one-line JSON on stderr, redacted. Never pass a token or credential here anyway. */
function log(level, msg, fields = {}) {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
  process.stderr.write(redactText(line) + '\n');
}

// ---------------------------------------------------------------------------------------------------
// Redaction: every secret value of 6+ characters becomes [REDACTED] in the log, the runner's messages
// and the result. Shorter values would redact ordinary words and protect nothing.

const REDACTED = '[REDACTED]';
const MIN_REDACTED_LENGTH = 6;
let redactValues = [];

/** The strings to redact for a secrets bundle: env values, the git token, the key and its lines. */
function secretValues(secrets) {
  if (!secrets) return [];
  const values = [...Object.values(secrets.env || {})];
  const git = secrets.git || {};
  if (git.token) values.push(git.token);
  if (git.sshPrivateKey) values.push(git.sshPrivateKey, ...git.sshPrivateKey.split('\n'));
  const settings = secrets.agent && secrets.agent.claudeSettingsJson;
  if (settings) {
    values.push(settings);
    const visit = (value, key, underEnv) => {
      if (typeof value === 'string' && (underEnv || /key|token|secret|password|auth/i.test(key))) values.push(value);
      else if (value && typeof value === 'object')
        for (const [k, v] of Object.entries(value)) visit(v, k, underEnv || k === 'env');
    };
    try {
      visit(JSON.parse(settings), '', false);
    } catch {
      /* validated on the host; nothing more to find */
    }
  }
  const unique = [...new Set(values.map((v) => String(v).trim()).filter((v) => v.length >= MIN_REDACTED_LENGTH))];
  return unique.sort((a, b) => b.length - a.length); // the longest first, so a value inside another goes too
}

/** The forms of a value that are redacted: the value itself, and as it appears inside a JSON string. */
function valueForms(value) {
  const quoted = JSON.stringify(value).slice(1, -1);
  return quoted !== value ? [value, quoted] : [value];
}

/** Replaces every needle, in order (the longest values come first); returns the text and how many went. */
function replaceNeedles(text, needles) {
  let count = 0;
  for (const needle of needles) {
    const parts = text.split(needle);
    count += parts.length - 1;
    text = parts.join(REDACTED);
  }
  return { text, count };
}

function redactText(text) {
  return replaceNeedles(String(text), redactValues.flatMap(valueForms)).text;
}

/**
 * Redacts the agent's patch before it reaches the disk. Works on bytes (a latin1 string holds one
 * byte per character), since files need not be UTF-8. A multi-line value in a patch is a run of
 * lines, each after its "+", "-" or " ": it becomes as many [REDACTED] lines with the same
 * prefixes, so the hunk's line counts stay right. The blob ids of a file that had a value replaced
 * hash its clear content, so its index line goes. A binary file is base85 in the patch, where no
 * value can be found: one whose old or new content holds a value (also as UTF-16, which git takes
 * for binary) is left out and listed.
 */
async function redactPatch(patch, repoDir) {
  if (redactValues.length === 0) return { patch, redactions: 0, withheld: [] };
  const bytes = (s) => Buffer.from(s, 'utf8').toString('latin1');
  const lineRun = (value) =>
    new RegExp(
      bytes(value)
        .split('\n')
        .map((line) => line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('\n[-+ ]'),
      'g',
    );
  const needles = redactValues.map((value) => ({
    forms: valueForms(value).map(bytes),
    run: value.includes('\n') ? lineRun(value) : null,
  }));
  const redactSection = (section) => {
    let text = section;
    let count = 0;
    for (const { forms, run } of needles) {
      const replaced = replaceNeedles(text, forms);
      text = replaced.text;
      count += replaced.count;
      if (run)
        text = text.replace(run, (match) => {
          count++;
          return match
            .split('\n')
            .map((line, i) => (i > 0 ? line[0] : '') + REDACTED)
            .join('\n');
        });
    }
    return { text, count };
  };
  const binaryForms = redactValues.flatMap((value) => [
    ...valueForms(value).map(bytes),
    Buffer.from(value, 'utf16le').toString('latin1'),
  ]);
  const blobsHoldValue = async (ids) => {
    for (const id of ids.filter((id) => !/^0+$/.test(id))) {
      const blob = (await git(['cat-file', 'blob', id], { cwd: repoDir, buffer: true })).toString('latin1');
      if (binaryForms.some((form) => blob.includes(form))) return true;
    }
    return false;
  };
  let redactions = 0;
  const withheld = [];
  const kept = [];
  // Every file's section starts a line with "diff --git ": patch content lines never do (they start
  // with a +, - or space, and base85 has no space).
  for (const section of patch.toString('latin1').split(/(?<=\n)(?=diff --git )/)) {
    const binary = section.includes('\nGIT binary patch\n') && /\nindex ([0-9a-f]+)\.\.([0-9a-f]+)/.exec(section);
    if (binary && (await blobsHoldValue(binary.slice(1)))) {
      withheld.push(redactText(sectionPath(section))); // its name may hold a value too
      continue;
    }
    const { text, count } = redactSection(section);
    redactions += count;
    kept.push(count > 0 ? text.replace(/\nindex [^\n]*/, '') : section);
  }
  if (redactions === 0 && withheld.length === 0) return { patch, redactions, withheld };
  return { patch: Buffer.from(kept.join(''), 'latin1'), redactions, withheld };
}

/** The path a file's section is about, as git writes it (quoted if git quoted it). */
function sectionPath(section) {
  const renamed = /\nrename to ([^\n]*)/.exec(section);
  if (renamed) return Buffer.from(renamed[1], 'latin1').toString('utf8');
  const header = section.slice('diff --git '.length, section.indexOf('\n')); // "a/P b/P" or '"a/P" "b/P"'
  const second = header.slice((header.length + 1) / 2);
  const name = second.startsWith('"') ? `"${second.slice(3)}` : second.slice(2);
  return Buffer.from(name, 'latin1').toString('utf8');
}

/**
 * Streams stdin to stdout with every value replaced, across chunk boundaries: the only bytes held back
 * are a tail that could still become a value, released (or redacted) by the next chunk or at the end.
 */
function redactStream(values, input, output) {
  const needles = values.map((v) => Buffer.from(v, 'utf8')).filter((b) => b.length > 0);
  const replacement = Buffer.from(REDACTED);
  let held = Buffer.alloc(0);
  const heldTail = (tail) => {
    let hold = 0;
    for (const needle of needles) {
      const from = Math.max(0, tail.length - needle.length + 1);
      for (let p = tail.indexOf(needle[0], from); p !== -1 && p < tail.length; p = tail.indexOf(needle[0], p + 1)) {
        const k = tail.length - p;
        if (k > hold && tail.subarray(p).equals(needle.subarray(0, k))) hold = k;
        if (hold >= k) break;
      }
    }
    return hold;
  };
  const step = (chunk, final) => {
    const buf = held.length ? Buffer.concat([held, chunk]) : chunk;
    const parts = [];
    let pos = 0;
    for (;;) {
      let best = -1;
      let bestLength = 0;
      for (const needle of needles) {
        const at = buf.indexOf(needle, pos);
        if (at !== -1 && (best === -1 || at < best || (at === best && needle.length > bestLength))) {
          best = at;
          bestLength = needle.length;
        }
      }
      if (best === -1) break;
      parts.push(buf.subarray(pos, best), replacement);
      pos = best + bestLength;
    }
    const tail = buf.subarray(pos);
    const hold = final ? 0 : heldTail(tail);
    parts.push(tail.subarray(0, tail.length - hold));
    held = Buffer.from(tail.subarray(tail.length - hold));
    return Buffer.concat(parts);
  };
  return new Promise((resolve, reject) => {
    input.on('data', (chunk) => {
      const out = step(chunk, false);
      if (out.length && !output.write(out)) {
        input.pause();
        output.once('drain', () => input.resume());
      }
    });
    input.on('end', () => output.write(step(Buffer.alloc(0), true), () => resolve()));
    input.on('error', reject);
  });
}

/** Errors that retrying cannot fix (the host said no). */
class PermanentError extends Error {}

function parseArgs(argv) {
  const options = {
    bootstrap: process.env.AGENTLAB_BOOTSTRAP,
    stateDir: process.env.AGENTLAB_STATE_DIR,
    workDir: process.env.AGENTLAB_WORK_DIR,
    secretsDir: process.env.AGENTLAB_SECRETS_DIR,
    agentUser: process.env.AGENTLAB_AGENT_USER,
    exitWhenDone: false,
  };
  const valueOf = (flag, i) => {
    const value = argv[i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--exit-when-done') options.exitWhenDone = true;
    else if (arg === '--bootstrap') options.bootstrap = valueOf(arg, ++i);
    else if (arg === '--state-dir') options.stateDir = valueOf(arg, ++i);
    else if (arg === '--work-dir') options.workDir = valueOf(arg, ++i);
    else if (arg === '--secrets-dir') options.secretsDir = valueOf(arg, ++i);
    else if (arg === '--agent-user') options.agentUser = valueOf(arg, ++i);
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!options.bootstrap) throw new Error('--bootstrap (or AGENTLAB_BOOTSTRAP) is required');
  if (!options.stateDir) throw new Error('--state-dir (or AGENTLAB_STATE_DIR) is required');
  if (!options.workDir) throw new Error('--work-dir (or AGENTLAB_WORK_DIR) is required');
  // Credentials belong on a tmpfs (the sandbox's /run/agentlab/secrets); without one, the state dir.
  options.secretsDir = options.secretsDir || options.stateDir;
  return options;
}

// ---------------------------------------------------------------------------------------------------
// Files

function readJsonFile(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Write-then-rename, so a crash never leaves a half-written state file behind. */
function writeFileAtomic(file, content, mode = 0o600) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}

const writeJsonFile = (file, value) => writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');

function fileSize(file) {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function ensurePrivateDir(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700); // mkdir's mode is filtered by the umask, and the dir may predate us
}

// ---------------------------------------------------------------------------------------------------
// HTTP to the host

/**
 * One HTTP exchange with node:http(s). Not fetch: loading fetch's implementation (undici and its WASM
 * parser) cost the runner ~90 ms of CPU, about a third of all it spends on a short job.
 */
function request(method, url, { body, headers = {}, timeoutMs }) {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? require('node:https') : require('node:http');
  const payload = body === undefined ? undefined : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = transport.request(
      target,
      {
        method,
        headers: payload ? { ...headers, 'content-length': payload.length } : headers,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}

const retryDeadlineMs = () => {
  const seconds = Number(process.env.AGENTLAB_RETRY_DEADLINE_SECONDS);
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : 600) * 1000;
};

/**
 * One call to the host. Connection errors, 5xx and 429 are retried with exponential backoff until the
 * retry deadline (the host's worker may be restarting); any other status is returned to the caller.
 */
async function call(method, url, { body, json, headers = {} } = {}) {
  const where = `${method} ${new URL(url).pathname}`;
  const deadline = Date.now() + retryDeadlineMs();
  let delay = BACKOFF_START_MS;
  for (;;) {
    let problem;
    try {
      const init = { headers: { ...headers }, timeoutMs: REQUEST_TIMEOUT_MS };
      if (json !== undefined) {
        init.body = JSON.stringify(json);
        init.headers['content-type'] = 'application/json';
      } else if (body !== undefined) {
        init.body = body;
        init.headers['content-type'] = 'application/octet-stream';
      }
      const res = await request(method, url, init);
      const text = res.text;
      if (res.status < 500 && res.status !== 429) {
        let parsed;
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch {
          parsed = { error: text.slice(0, 200) };
        }
        return { status: res.status, body: parsed && typeof parsed === 'object' ? parsed : {} };
      }
      problem = `HTTP ${res.status}`;
    } catch (err) {
      problem = err.code || err.message || String(err);
    }
    if (Date.now() + delay > deadline) throw new Error(`${where} failed for ${retryDeadlineMs() / 1000}s: ${problem}`);
    log('warn', 'host call failed, retrying', { call: where, problem, retryInMs: delay });
    await sleep(delay);
    delay = Math.min(delay * 2, BACKOFF_MAX_MS);
  }
}

const refusal = (what, res) => `${what}: HTTP ${res.status}${res.body.error ? ` ${res.body.error}` : ''}`;

/** The guest API's job routes, authenticated with the runner credential. */
class JobApi {
  constructor(controllerUrl, jobId, credential) {
    this.base = `${controllerUrl.replace(/\/+$/, '')}/v1/jobs/${encodeURIComponent(jobId)}`;
    this.auth = { authorization: `Bearer ${credential}` };
  }

  /** Returns the number of bytes the host now holds (a 409 tells us where to resend from). */
  async postLog(offset, chunk) {
    const res = await call('POST', `${this.base}/logs?offset=${offset}`, { body: chunk, headers: this.auth });
    if (res.status !== 200 && res.status !== 409) throw new PermanentError(refusal('log upload refused', res));
    const size = res.body.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new PermanentError('log upload: the host sent no valid size');
    return size;
  }

  /** Best effort: one try, short timeout, errors ignored. */
  async heartbeat(phase, message) {
    try {
      await request('POST', `${this.base}/heartbeat`, {
        headers: { ...this.auth, 'content-type': 'application/json' },
        body: JSON.stringify(message ? { phase, message } : { phase }),
        timeoutMs: 5000,
      });
    } catch {
      /* the next heartbeat will do */
    }
  }

  async putArtifact(name, content) {
    const url = `${this.base}/artifacts/${encodeURIComponent(name)}`;
    const res = await call('PUT', url, { body: content, headers: this.auth });
    if (res.status !== 200) throw new PermanentError(refusal(`artifact ${name} refused`, res));
  }

  /** Returns false when the host says the job is already finished (409): that is final too. */
  async postResult(result) {
    const res = await call('POST', `${this.base}/result`, { json: result, headers: this.auth });
    if (res.status === 409) return false;
    if (res.status !== 200) throw new PermanentError(refusal('result refused', res));
    return true;
  }
}

/** Sends the current phase on every change and every few seconds, until stopped. */
class Heartbeat {
  constructor(api) {
    this.api = api;
    this.phase = undefined;
    this.timer = setInterval(() => this.phase && void this.api.heartbeat(this.phase), HEARTBEAT_INTERVAL_MS);
  }

  set(phase, message) {
    this.phase = phase;
    void this.api.heartbeat(phase, message);
  }

  stop() {
    clearInterval(this.timer);
  }
}

/**
 * Ships agent.log from the offset the host acknowledges, so a restarted runner (or a lost response)
 * neither loses nor repeats bytes: the host skips any overlap itself.
 */
class LogShipper {
  constructor(api, file) {
    this.api = api;
    this.file = file;
    this.acked = undefined;
    this.loop = undefined;
    this.stopped = false;
  }

  /** Ships everything the file holds now; returns that size. */
  async shipOnce() {
    if (this.acked === undefined) this.acked = await this.api.postLog(0, Buffer.alloc(0)); // "how much do you have?"
    const size = fileSize(this.file);
    let stalls = 0;
    while (this.acked < size) {
      const length = Math.min(LOG_CHUNK_BYTES, size - this.acked);
      const chunk = Buffer.alloc(length);
      const fd = fs.openSync(this.file, 'r');
      try {
        fs.readSync(fd, chunk, 0, length, this.acked);
      } finally {
        fs.closeSync(fd);
      }
      const before = this.acked;
      this.acked = await this.api.postLog(before, chunk);
      // A host that keeps answering without taking bytes must not turn this into a busy loop.
      if (this.acked <= before && ++stalls > 20) throw new Error(`the host keeps its log at ${this.acked} bytes`);
      if (this.acked <= before && stalls > 3) await sleep(1000);
    }
    return size;
  }

  start() {
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.shipOnce();
        } catch (err) {
          log('warn', 'log shipping failed', { error: err.message });
          if (err instanceof PermanentError) return; // flush() will meet the same error and report it
        }
        await sleep(SHIP_INTERVAL_MS);
      }
    })();
  }

  /** Stops the background loop and ships until the host holds the whole local file. */
  async flush() {
    this.stopped = true;
    if (this.loop) await this.loop;
    this.loop = undefined;
    while (this.acked === undefined || this.acked < fileSize(this.file)) await this.shipOnce();
  }
}

// ---------------------------------------------------------------------------------------------------
// Git

class GitError extends Error {}

// Hooks off and the ext transport off for every git call; fsmonitor off because after the agent ran,
// .git/config is the agent's to edit.
// No credential helper either: the token comes from our askpass and must not be stored anywhere.
const GIT_SAFETY = [
  '-c',
  'protocol.ext.allow=never',
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'credential.helper=',
  // After the agent, the repository belongs to the agent user; hooks, fsmonitor and its config (see
  // sanitizeRepoConfig) are already out of play, so git's ownership check only stands in the way.
  '-c',
  'safe.directory=*',
];

/** GIT_ASKPASS / GIT_SSH_COMMAND for the job's credentials, once they are on the tmpfs. */
let gitAuthEnv = {};

// The runner's own git writes reflogs (clone, checkout): an identity given here spares git from building one
// out of the hostname, which can mean a DNS lookup per call.
const RUNNER_GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'agentlab runner',
  GIT_AUTHOR_EMAIL: 'runner@agentlab.invalid',
  GIT_COMMITTER_NAME: 'agentlab runner',
  GIT_COMMITTER_EMAIL: 'runner@agentlab.invalid',
};

function gitEnv() {
  const env = { ...process.env, ...RUNNER_GIT_IDENTITY, ...gitAuthEnv, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' };
  // Never wait on a password prompt from ssh either.
  if (!env.GIT_SSH_COMMAND && !env.GIT_SSH) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  return env;
}

/**
 * Runs git without blocking the event loop (logs keep shipping while a big clone runs). Resolves
 * with stdout as text (a Buffer with `buffer`); rejects with the tail of git's stderr.
 */
function git(args, { cwd, buffer } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...GIT_SAFETY, ...args], {
      cwd,
      env: gitEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = [];
    let err = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => {
      err = (err + d.toString('utf8')).slice(-64 * 1024);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), GIT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new GitError(`git ${args[0]} could not run: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(buffer ? Buffer.concat(out) : Buffer.concat(out).toString('utf8'));
      const tail = err.trim().split('\n').slice(-GIT_ERROR_LINES).join('\n');
      const how = signal ? `was killed by ${signal}` : `failed (exit ${code})`;
      reject(new GitError(`git ${args[0]} ${how}${tail ? `: ${tail}` : ''}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Processes (Linux /proc where available: it tells zombies and reused pids apart from live agents)

/** { state, pgrp, startTime } of a pid, or undefined if there is no such process (or no /proc). */
function procStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // the command name may hold spaces
  return { state: fields[0], pgrp: Number(fields[2]), startTime: fields[19] };
}

const hasProc = () => fs.existsSync('/proc/self/stat');

function processRunning(pid, startTime) {
  if (!hasProc()) {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  const stat = procStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** Whether any live (non-zombie) process is left in the process group. */
function groupRunning(pgid) {
  if (!hasProc()) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

/** SIGTERM the group, SIGKILL it after the grace period, and wait until it is gone. */
async function stopGroup(pgid) {
  if (!groupRunning(pgid)) return;
  signalGroup(pgid, 'SIGTERM');
  const killAt = Date.now() + KILL_GRACE_MS;
  while (groupRunning(pgid) && Date.now() < killAt) await sleep(100);
  if (!groupRunning(pgid)) return;
  signalGroup(pgid, 'SIGKILL');
  const giveUpAt = Date.now() + KILL_GRACE_MS;
  while (groupRunning(pgid) && Date.now() < giveUpAt) await sleep(100);
}

// The agent's parent: records its pid and, when it ends, its exit code; both atomically. The agent
// command arrives as "$3", so nothing from the job is ever spliced into a shell string.
// "$AGENTLAB_AS_AGENT" is empty, or the setpriv words that drop to the agent user for the agent alone:
// the wrapper (exit and pid files, the redactor) stays the runner's.
const AGENT_WRAPPER = [
  'echo $$ > "$2.w" && mv -f "$2.w" "$2"',
  '$AGENTLAB_AS_AGENT /bin/sh -c "$3" < "$AGENTLAB_TASK_FILE"',
  'code=$?',
  'echo "$code" > "$1.w" && mv -f "$1.w" "$1"',
].join('\n');

// With secrets, the agent's output goes through this runner in --redact mode ("$4" node, "$5" this file,
// "$6" the values). The exit code is final only once the redactor has written everything ("$1.pending"
// first: a background process holding the pipe open must not hide that the agent has ended).
const REDACTING_AGENT_WRAPPER = [
  'echo $$ > "$2.w" && mv -f "$2.w" "$2"',
  '( $AGENTLAB_AS_AGENT /bin/sh -c "$3" < "$AGENTLAB_TASK_FILE"; echo $? > "$1.pending" ) 2>&1 | "$4" "$5" --redact "$6"',
  'mv -f "$1.pending" "$1" 2>/dev/null',
].join('\n');
const PENDING_EXIT_GRACE_MS = 3000;

// ---------------------------------------------------------------------------------------------------
// Secrets on the tmpfs: an env file, git credentials, agent settings. Wiped once the agent is done.

const shellQuote = (text) => `'${String(text).replace(/'/g, `'\\''`)}'`;

/** What the runner keeps for itself in the secrets dir; everything the agent may read is in `agent/`. */
const SECRET_FILES = ['agent', 'redact.json'];

/** The unprivileged account the agent runs as, from /etc/passwd (the runner itself stays root). */
function lookupAgentUser(name) {
  const entry = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === name);
  if (!entry) throw new PermanentError(`the agent user ${JSON.stringify(name)} is not in /etc/passwd`);
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0)
    throw new PermanentError(`the agent user ${JSON.stringify(name)} must be an unprivileged account`);
  return { name, uid, gid };
}

/**
 * The agent's own private directory on the secrets tmpfs: its home (config of the agent CLIs), the
 * task, and the secret files it may read. Owned by the agent user, so nothing else of the runner's is.
 */
function prepareAgentDir(secretsDir, agentUser) {
  const dir = path.join(secretsDir, 'agent');
  ensurePrivateDir(dir);
  ensurePrivateDir(path.join(dir, 'home'));
  if (agentUser) {
    // The agent must reach its directory through the secrets dir, without listing or reading the rest.
    fs.chmodSync(secretsDir, 0o711);
    chownTree(dir, agentUser);
  }
  return dir;
}

function chownTree(target, user) {
  fs.lchownSync(target, user.uid, user.gid);
  if (!fs.lstatSync(target).isDirectory()) return;
  for (const name of fs.readdirSync(target)) chownTree(path.join(target, name), user);
}

/**
 * Writes the bundle's content as files under `dir` (0700 dirs, 0600 files) and returns the environment
 * the agent and git get. Idempotent: a restarted runner rewrites the same files.
 */
function materializeSecrets(dir, secrets) {
  const file = (name) => path.join(dir, name);
  const env = {};
  const gitAuth = {};
  if (!secrets) return { env, gitAuth, envFile: undefined };
  const envLines = Object.entries(secrets.env || {}).map(([name, value]) => `export ${name}=${shellQuote(value)}`);
  writeFileAtomic(file('agent.env'), envLines.join('\n') + (envLines.length ? '\n' : ''));
  Object.assign(env, secrets.env || {});

  const git = secrets.git || {};
  if (git.token) {
    writeFileAtomic(file('git-token'), git.token);
    writeFileAtomic(file('git-username'), git.username || 'x-access-token');
    // git asks "Username for ...:" then "Password for ...:"; the answers come from files, never argv or env.
    const askpass = [
      '#!/bin/sh',
      `case "$1" in Username*) exec cat ${shellQuote(file('git-username'))} ;; esac`,
      `exec cat ${shellQuote(file('git-token'))}`,
      '',
    ].join('\n');
    writeFileAtomic(file('git-askpass'), askpass, 0o700);
    gitAuth.GIT_ASKPASS = file('git-askpass');
  }
  if (git.sshPrivateKey) {
    ensurePrivateDir(file('ssh'));
    const key = path.join(file('ssh'), 'id');
    const knownHosts = path.join(file('ssh'), 'known_hosts');
    writeFileAtomic(key, git.sshPrivateKey.endsWith('\n') ? git.sshPrivateKey : `${git.sshPrivateKey}\n`);
    writeFileAtomic(knownHosts, git.knownHosts.endsWith('\n') ? git.knownHosts : `${git.knownHosts}\n`);
    gitAuth.GIT_SSH_COMMAND = [
      'ssh',
      `-i ${shellQuote(key)}`,
      '-o IdentitiesOnly=yes',
      '-o StrictHostKeyChecking=yes',
      `-o UserKnownHostsFile=${shellQuote(knownHosts)}`,
      '-o BatchMode=yes',
    ].join(' ');
  }
  const settings = secrets.agent && secrets.agent.claudeSettingsJson;
  if (settings) {
    ensurePrivateDir(file('claude'));
    writeFileAtomic(path.join(file('claude'), 'settings.json'), settings);
    env.CLAUDE_CONFIG_DIR = file('claude');
  }
  return { env: { ...env, ...gitAuth }, gitAuth, envFile: file('agent.env') };
}

/** Removes every secret file and the bundle from the stored claim; the credential stays for delivery. */
function wipeSecrets(dir, claimFile) {
  for (const name of SECRET_FILES) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  const claim = readJsonFile(claimFile);
  if (claim && claim.secrets) writeJsonFile(claimFile, { ...claim, secrets: null, secretsWiped: true });
}

// ---------------------------------------------------------------------------------------------------
// The runner

class Runner {
  constructor(options) {
    this.options = options;
    this.repoDir = path.join(options.workDir, 'repo');
    this.agentUser = options.agentUser ? lookupAgentUser(options.agentUser) : undefined;
    this.agentDir = path.join(options.secretsDir, 'agent');
    const state = (name) => path.join(options.stateDir, name);
    this.files = {
      claim: path.join(options.secretsDir, 'claim.json'),
      claimCredential: path.join(options.secretsDir, 'claim-credential'),
      task: state('task.txt'),
      log: state('agent.log'),
      agent: state('agent.json'), // written before the agent starts: it must never start twice
      agentPid: state('agent.pid'),
      agentExit: state('agent.exit'),
      agentExitPending: state('agent.exit.pending'),
      patch: state('changes.patch'),
      report: state('report.json'),
      result: state('result.json'),
      reported: state('result.reported'),
    };
  }

  /** Claims the job with the one-time token, or resumes with the credential an earlier runner got. */
  async claim() {
    const cached = readJsonFile(this.files.claim);
    if (cached && typeof cached.runnerCredential === 'string') {
      log('info', 'resuming with the stored claim', { jobId: cached.job ? cached.job.jobId : null });
      return cached;
    }
    const bootstrap = readJsonFile(this.options.bootstrap);
    if (!bootstrap || typeof bootstrap.controllerUrl !== 'string' || typeof bootstrap.token !== 'string')
      throw new PermanentError(`bootstrap file ${this.options.bootstrap} is missing or incomplete`);
    const url = `${bootstrap.controllerUrl.replace(/\/+$/, '')}/v1/bootstrap`;
    // The credential is ours, kept before the first try: a claim whose answer was lost (the worker died
    // after the workflow took it) is repeated with the same one, which the host accepts once more.
    const runnerCredential = this.claimCredential();
    const res = await call('POST', url, {
      json: { token: bootstrap.token, jobId: bootstrap.jobId, vmid: bootstrap.vmid, runnerCredential },
    });
    if (res.status !== 200) throw new PermanentError(refusal('bootstrap claim refused', res));
    if (typeof res.body.runnerCredential !== 'string')
      throw new PermanentError('bootstrap claim: the host sent no runner credential');
    const claim = {
      controllerUrl: bootstrap.controllerUrl,
      jobId: bootstrap.jobId,
      allowLocalRepos: bootstrap.allowLocalRepos === true,
      allowLoopbackHttp: bootstrap.allowLoopbackHttp === true,
      localRepo: typeof bootstrap.localRepo === 'string' ? bootstrap.localRepo : null,
      workspace: typeof bootstrap.workspace === 'string' ? bootstrap.workspace : null,
      runnerCredential: res.body.runnerCredential,
      job: res.body.job || null,
      secrets: res.body.secrets || null,
    };
    writeJsonFile(this.files.claim, claim); // on the tmpfs, like every other secret
    fs.rmSync(this.files.claimCredential, { force: true }); // claim.json holds it from now on
    // The token is spent; where cloud-init left a writable copy, it goes too (the host deletes its own).
    try {
      fs.rmSync(this.options.bootstrap, { force: true });
    } catch {
      /* a read-only cloud-init seed: the host deletes the source */
    }
    log('info', 'bootstrap claimed', { jobId: bootstrap.jobId, hasJob: !!claim.job, hasSecrets: !!claim.secrets });
    return claim;
  }

  /** This runner's credential, made once (on the secrets tmpfs) and kept across runner restarts. */
  claimCredential() {
    try {
      const kept = fs.readFileSync(this.files.claimCredential, 'utf8').trim();
      if (/^[0-9a-f]{64}$/.test(kept)) return kept;
    } catch {
      /* none yet */
    }
    const credential = randomBytes(32).toString('hex');
    writeFileAtomic(this.files.claimCredential, credential);
    return credential;
  }

  /** Runner lines in agent.log are only for problems: a healthy log is the agent's output, byte for byte. */
  appendLog(line) {
    fs.appendFileSync(this.files.log, `agent-runner: ${redactText(line)}\n`);
  }

  /**
   * Where to clone from and what to check out. A repository on the host arrives as the host's copy of
   * its pinned commit (bootstrap `localRepo`); anything else is cloned from its URL, by the same rules
   * the CLI and the workflow applied.
   */
  cloneSource(job, claim) {
    if (isLocalRepo(job.repo) && claim.localRepo) {
      if (!isCommitId(job.commit)) throw new Error('the job names a local repository but no commit');
      return { url: claim.localRepo, ref: job.commit };
    }
    const ref = job.ref || 'HEAD';
    const problem = repoUrlProblem(job.repo, {
      allowLocal: claim.allowLocalRepos,
      allowLoopbackHttp: claim.allowLocalRepos || claim.allowLoopbackHttp,
    });
    if (problem) throw new Error(`repository ${problem}`);
    const refIssue = refProblem(ref);
    if (refIssue) throw new Error(`ref ${refIssue}`);
    return { url: job.repo, ref };
  }

  /**
   * A persistent workspace (mounted at /workspace) holds the checkout, so the next job finds it again: the
   * agent's directory is then the workspace's `repo`, and the workspace itself the agent's to write.
   */
  useWorkspace(claim) {
    if (!claim.workspace) return;
    this.workspaceDir = claim.workspace;
    this.repoDir = path.join(claim.workspace, 'repo');
    if (this.agentUser) fs.chownSync(claim.workspace, this.agentUser.uid, this.agentUser.gid);
  }

  /**
   * A checkout the workspace already holds is fetched into, not cloned again: tracked files go to the ref
   * (the earlier job's changes are in its patch), untracked ones are removed, ignored ones (build output,
   * dependencies) stay. The earlier agent's config was reduced to the bare minimum: the URL is given here.
   */
  async refreshCheckout(source) {
    this.sanitizeRepoConfig(); // an agent killed with its sandbox left its config as it pleased
    await git(['fetch', '--quiet', '--', source.url, source.ref], { cwd: this.repoDir });
    await git(['checkout', '--quiet', '--force', '-B', 'agentlab', 'FETCH_HEAD'], { cwd: this.repoDir });
    await git(['clean', '--quiet', '-d', '--force'], { cwd: this.repoDir });
  }

  async prepareRepo(job, claim) {
    const source = this.cloneSource(job, claim);
    if (this.workspaceDir && fs.existsSync(path.join(this.repoDir, '.git'))) {
      await this.refreshCheckout(source);
      if (this.agentUser) chownTree(this.repoDir, this.agentUser);
      return (await git(['rev-parse', 'HEAD'], { cwd: this.repoDir })).trim();
    }
    fs.rmSync(this.repoDir, { recursive: true, force: true }); // a half-done clone from an earlier attempt
    fs.mkdirSync(this.options.workDir, { recursive: true });
    await git(['clone', '--no-checkout', '--quiet', '--', source.url, this.repoDir], {
      cwd: path.dirname(this.repoDir),
    });
    await git(['fetch', '--quiet', '--', 'origin', source.ref], { cwd: this.repoDir });
    await git(['checkout', '--quiet', '-B', 'agentlab', 'FETCH_HEAD'], { cwd: this.repoDir });
    if (this.agentUser) {
      fs.chmodSync(this.options.workDir, 0o711); // the agent passes through to its checkout
      chownTree(this.repoDir, this.agentUser); // the agent's to change
    }
    return (await git(['rev-parse', 'HEAD'], { cwd: this.repoDir })).trim();
  }

  /**
   * Starts the agent in its own session, writing to agent.log (through the redactor when there are
   * secrets): it outlives a runner crash.
   */
  /** Where a known agent's binary is on this sandbox's PATH, and the version it reports. */
  knownAgent(kind) {
    const bin = agentBin(kind);
    const found = (process.env.PATH || '')
      .split(':')
      .map((dir) => path.join(dir, bin))
      .find((file) => {
        try {
          fs.accessSync(file, fs.constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
    if (!found) return { path: undefined, version: undefined };
    let version;
    try {
      // As the agent would run it, in a scratch home: nothing it writes stays behind owned by the wrong user.
      const home = fs.mkdtempSync(path.join(this.agentDir, 'version-'));
      if (this.agentUser) fs.chownSync(home, this.agentUser.uid, this.agentUser.gid);
      try {
        version = execFileSync(found, ['--version'], {
          encoding: 'utf8',
          timeout: 30_000,
          stdio: ['ignore', 'pipe', 'ignore'],
          env: { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8' },
          ...(this.agentUser ? { uid: this.agentUser.uid, gid: this.agentUser.gid } : {}),
        })
          .trim()
          .split('\n')[0];
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    } catch (err) {
      log('warn', 'the agent did not tell its version', { agent: kind, error: err.message });
    }
    return { path: found, version };
  }

  /**
   * What report.json says of a known agent: its kind, version, the tokens its own output reports, and
   * its own account of a failure. The log holds only redacted text.
   */
  agentReport(agent) {
    let usage;
    let error;
    try {
      // Both are in the agent's last lines; a huge log is read from its tail only.
      const size = fileSize(this.files.log);
      const fd = fs.openSync(this.files.log, 'r');
      const length = Math.min(size, 4 * 1024 * 1024);
      const tail = Buffer.alloc(length);
      fs.readSync(fd, tail, 0, length, size - length);
      fs.closeSync(fd);
      usage = agentUsage(agent.kind, tail.toString('utf8'));
      error = agentError(agent.kind, tail.toString('utf8'));
    } catch (err) {
      log('warn', 'reading the agent output failed', { error: err.message });
    }
    return { kind: agent.kind, version: agent.version || null, usage: usage || null, error: error || null };
  }

  /** The agent's home and identity: its own directory on the tmpfs, so its CLIs' config dies with the sandbox. */
  agentEnv(job, secretEnv) {
    const home = path.join(this.agentDir, 'home');
    const env = { HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') };
    if (isAgentKind(job.agentKind)) {
      Object.assign(
        env,
        prepareAgent(job.agentKind, {
          home,
          env: secretEnv.env,
          model: job.agentModel,
          maxRetries: Number.isInteger(job.agentMaxRetries) ? job.agentMaxRetries : undefined,
          asRoot: !this.agentUser && process.getuid && process.getuid() === 0,
        }),
      );
    }
    if (this.agentUser) chownTree(home, this.agentUser); // the config files just written are the agent's
    if (!this.agentUser) return { ...env, AGENTLAB_AS_AGENT: '' };
    const { name, uid, gid } = this.agentUser;
    return {
      ...env,
      USER: name,
      LOGNAME: name,
      // Numbers only: the words are split by the wrapper's shell unquoted.
      AGENTLAB_AS_AGENT: `setpriv --reuid=${uid} --regid=${gid} --clear-groups --no-new-privs --`,
    };
  }

  /** The task, where the agent (a user without access to the runner's state) can read it. */
  agentTaskFile(job) {
    const file = path.join(this.agentDir, 'task.txt');
    writeFileAtomic(file, String(job.task ?? ''));
    if (this.agentUser) fs.chownSync(file, this.agentUser.uid, this.agentUser.gid);
    return file;
  }

  startAgent(job, secretEnv) {
    const logFd = fs.openSync(this.files.log, 'a');
    const redacting = redactValues.length > 0;
    const args = redacting
      ? [REDACTING_AGENT_WRAPPER, 'agentlab-agent', this.files.agentExit, this.files.agentPid, job.agentCommand]
      : [AGENT_WRAPPER, 'agentlab-agent', this.files.agentExit, this.files.agentPid, job.agentCommand];
    if (redacting) args.push(process.execPath, __filename, path.join(this.options.secretsDir, 'redact.json'));
    let child;
    try {
      child = spawn('/bin/sh', ['-c', ...args], {
        cwd: this.repoDir,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: {
          ...process.env,
          ...this.agentEnv(job, secretEnv),
          ...secretEnv.env,
          ...(secretEnv.envFile ? { AGENTLAB_ENV_FILE: secretEnv.envFile } : {}),
          GIT_TERMINAL_PROMPT: '0',
          PWD: this.repoDir,
          AGENTLAB_TASK_FILE: this.agentTaskFile(job),
          AGENTLAB_TASK: job.task,
          AGENTLAB_JOB_ID: job.jobId,
          AGENTLAB_REPO_DIR: this.repoDir,
          ...(this.workspaceDir ? { AGENTLAB_WORKSPACE: this.workspaceDir } : {}),
        },
      });
    } finally {
      fs.closeSync(logFd);
    }
    child.on('error', (err) => log('error', 'agent wrapper failed', { error: err.message }));
    child.unref();
    if (child.pid === undefined) throw new Error('could not start /bin/sh for the agent');
    writeFileAtomic(this.files.agentPid, `${child.pid}\n`, 0o644);
    return child.pid;
  }

  readAgentExit(file = this.files.agentExit) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      return undefined;
    }
    const code = Number(text);
    return text !== '' && Number.isInteger(code) ? code : null;
  }

  /** The agent's pid, from our own record or the wrapper's; waits briefly for a wrapper that just started. */
  async agentPid() {
    for (let i = 0; i < 10; i++) {
      let pid = NaN;
      try {
        pid = Number(fs.readFileSync(this.files.agentPid, 'utf8').trim());
      } catch {
        /* not written yet */
      }
      if (Number.isSafeInteger(pid) && pid > 0) return pid;
      await sleep(200);
    }
    return undefined;
  }

  /** Waits for the agent (ours or an earlier runner's); enforces the timeout. Returns { code, timedOut }. */
  async waitForAgent(agent, timeoutSeconds) {
    const pid = agent.pid;
    const deadline = timeoutSeconds > 0 ? agent.startedAt + timeoutSeconds * 1000 : Infinity;
    let timedOut = agent.timedOut === true;
    let code;
    let pendingSince;
    while (!timedOut) {
      code = this.readAgentExit();
      if (code !== undefined) break;
      // The agent has ended but its output is still draining through the redactor: give it a moment.
      const pending = this.readAgentExit(this.files.agentExitPending);
      if (typeof pending === 'number') {
        pendingSince = pendingSince || Date.now();
        if (Date.now() - pendingSince > PENDING_EXIT_GRACE_MS) {
          code = pending;
          break;
        }
      }
      if (!processRunning(pid, agent.pidStartTime)) {
        code = this.readAgentExit(); // it may have finished between the two checks
        break;
      }
      if (Date.now() >= deadline) {
        timedOut = true;
        writeJsonFile(this.files.agent, { ...agent, timedOut: true }); // a restarted runner must still say TIMEOUT
        this.appendLog(`agent timed out after ${timeoutSeconds}s; stopping it`);
        log('warn', 'agent timed out', { timeoutSeconds });
        break;
      }
      await sleep(POLL_MS);
    }
    // Also stops whatever the agent left running in its group, so the log is final once we ship it.
    await stopGroup(pid);
    return timedOut ? { code: 124, timedOut: true } : { code: code === undefined ? null : code, timedOut: false };
  }

  /**
   * After the agent, the repository's .git is the agent's work: its config could name a clean
   * filter, an external diff, a pager or an fsmonitor that git would run for us. Keep only what
   * git needs to read the repository; hooks are off for every call anyway.
   */
  sanitizeRepoConfig() {
    const configFile = path.join(this.repoDir, '.git', 'config');
    let original = '';
    try {
      original = fs.readFileSync(configFile, 'utf8');
    } catch {
      /* no config: git will say what is wrong */
    }
    const version = /repositoryformatversion\s*=\s*(\d+)/.exec(original);
    const objectFormat = /objectformat\s*=\s*(\w+)/i.exec(original);
    const lines = ['[core]', `\trepositoryformatversion = ${version ? version[1] : '0'}`, '\tbare = false'];
    if (objectFormat) lines.push('[extensions]', `\tobjectformat = ${objectFormat[1]}`);
    writeFileAtomic(configFile, lines.join('\n') + '\n', 0o644);
    fs.rmSync(path.join(this.repoDir, '.git', 'info', 'attributes'), { force: true });
  }

  /** Writes changes.patch, redacted in memory first (a clear copy never reaches the disk). */
  async collectChanges(baseCommit) {
    this.sanitizeRepoConfig();
    await git(['add', '-A'], { cwd: this.repoDir });
    const diff = await git(
      ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', '--no-textconv', baseCommit, '--'],
      { cwd: this.repoDir, buffer: true },
    );
    const { patch, redactions, withheld } = await redactPatch(diff, this.repoDir);
    writeFileAtomic(this.files.patch, patch, 0o644);
    if (redactions > 0 || withheld.length > 0) {
      const line = patchRedactionSummary(redactions, withheld.length);
      this.appendLog(`${line}${withheld.length ? `: ${withheld.join(', ')}` : ''}`);
      log('warn', line, { withheld });
    }
    const headCommit = (await git(['rev-parse', 'HEAD'], { cwd: this.repoDir })).trim();
    return { headCommit, patchRedactions: redactions, patchFilesWithheld: withheld };
  }

  /** Everything from the clone to the agent's changes; returns the outcome (never throws for job problems). */
  async runJob(claim, job, heartbeat, secretEnv) {
    let agent = readJsonFile(this.files.agent);
    const preparingSince = Date.now();
    const failure = (message, extra = {}) => {
      this.appendLog(message);
      return {
        status: 'FAILED',
        exitCode: null,
        message,
        durationSeconds: seconds(Date.now() - (agent ? agent.startedAt : preparingSince)),
        baseCommit: agent ? agent.baseCommit : null,
        headCommit: null,
        ...extra,
      };
    };

    if (!agent) {
      if (typeof job.agentCommand !== 'string' || job.agentCommand.trim() === '')
        return failure('the job has no agent command');
      fs.writeFileSync(this.files.task, String(job.task ?? ''), { mode: 0o600 });
      let known;
      if (isAgentKind(job.agentKind)) {
        known = this.knownAgent(job.agentKind);
        if (!known.path) {
          return failure(
            `${agentTitle(job.agentKind)} (${agentBin(job.agentKind)}) is not installed in this sandbox: install it ` +
              'on the worker host with `agentlab agents install` (Proxmox: rebuild the template with scripts/create_template.sh)',
          );
        }
      }
      heartbeat.set('cloning');
      let baseCommit;
      try {
        baseCommit = await this.prepareRepo(job, claim);
      } catch (err) {
        return failure(`preparing the repository failed: ${err.message}`);
      }
      for (const stale of [this.files.agentPid, this.files.agentExit, this.files.agentExitPending])
        fs.rmSync(stale, { force: true });
      // Recorded before the spawn: a runner restarted after this point waits for the agent, never starts it.
      agent = {
        startedAt: Date.now(),
        baseCommit,
        pid: null,
        ...(known ? { kind: job.agentKind, version: known.version } : {}),
      };
      writeJsonFile(this.files.agent, agent);
      const pid = this.startAgent(job, secretEnv);
      const stat = procStat(pid);
      agent = { ...agent, pid, pidStartTime: stat ? stat.startTime : undefined };
      writeJsonFile(this.files.agent, agent);
      log('info', 'agent started', { pid });
    } else if (!agent.pid) {
      const pid = await this.agentPid();
      if (!pid) return failure('the runner stopped while starting the agent; not starting it a second time');
      agent = { ...agent, pid };
      log('info', 'reattaching to the agent an earlier runner started', { pid });
    } else {
      log('info', 'reattaching to the agent an earlier runner started', { pid: agent.pid });
    }

    heartbeat.set('running');
    const timeoutSeconds = Number(job.timeoutSeconds) > 0 ? Number(job.timeoutSeconds) : 0;
    const { code, timedOut } = await this.waitForAgent(agent, timeoutSeconds);
    const durationSeconds = seconds(Date.now() - agent.startedAt);
    log('info', 'agent finished', { exitCode: code, timedOut });

    heartbeat.set('collecting');
    let changes;
    try {
      changes = await this.collectChanges(agent.baseCommit);
    } catch (err) {
      const how = timedOut ? 'timed out' : `exited with code ${code}`;
      return failure(`the agent ${how}, but collecting its changes failed: ${err.message}`, { durationSeconds });
    }
    const outcome = {
      exitCode: code,
      durationSeconds,
      baseCommit: agent.baseCommit,
      ...changes,
      ...(agent.kind ? { agent: this.agentReport(agent) } : {}),
    };
    if (timedOut)
      return { ...outcome, status: 'TIMEOUT', exitCode: 124, message: `agent timed out after ${timeoutSeconds}s` };
    if (code === 124) return { ...outcome, status: 'TIMEOUT', message: 'agent exited with code 124 (timed out)' };
    if (code === 0) return { ...outcome, status: 'COMPLETED', message: 'agent exited with code 0' };
    if (code === null) {
      this.appendLog('the agent ended without recording an exit code (killed?)');
      return { ...outcome, status: 'FAILED', message: 'the agent ended without recording an exit code' };
    }
    // A known agent says why (the model API's 401, 429 or 5xx): that, not just a number, is the result.
    const why =
      outcome.agent && outcome.agent.error ? `: ${agentTitle(outcome.agent.kind)} says ${outcome.agent.error}` : '';
    return { ...outcome, status: 'FAILED', message: `agent exited with code ${code}${why}` };
  }

  /**
   * Artifacts, then the whole log, then the result: once the host has the result it has everything.
   * A delivery failure turns the result into FAILED with the reason, if the host can still hear it.
   */
  async report(api, shipper, heartbeat, outcome) {
    heartbeat.set('uploading');
    const patchRedactions = outcome.patchRedactions || 0;
    const patchFilesWithheld = outcome.patchFilesWithheld || [];
    // The operator sees the message in `job show`: a patch that will not apply as is must say so there.
    const message = redactText(
      patchRedactions > 0 || patchFilesWithheld.length > 0
        ? `${outcome.message}; ${patchRedactionSummary(patchRedactions, patchFilesWithheld.length)}`
        : outcome.message,
    );
    let result = { status: outcome.status, exitCode: outcome.exitCode, message };
    const fail = (message) => {
      log('error', message);
      this.appendLog(message);
      result = { status: 'FAILED', exitCode: null, message };
    };

    writeFileAtomic(
      this.files.report,
      JSON.stringify(
        {
          status: outcome.status,
          exitCode: outcome.exitCode,
          durationSeconds: outcome.durationSeconds,
          baseCommit: outcome.baseCommit,
          headCommit: outcome.headCommit,
          message,
          patchRedactions,
          patchFilesWithheld,
          agent: outcome.agent || null,
        },
        null,
        2,
      ) + '\n',
      0o644,
    );
    try {
      await api.putArtifact('report.json', fs.readFileSync(this.files.report));
      if (outcome.headCommit && fs.existsSync(this.files.patch))
        await api.putArtifact('changes.patch', fs.readFileSync(this.files.patch));
    } catch (err) {
      fail(`uploading artifacts failed: ${err.message}`);
    }
    try {
      await shipper.flush();
      await api.putArtifact('agent.log', fs.readFileSync(this.files.log));
    } catch (err) {
      fail(`uploading the log failed: ${err.message}`);
      await shipper.flush().catch(() => undefined); // so the reason is in the host's copy too, if it can be
    }

    heartbeat.set('reporting');
    const accepted = await api.postResult(result);
    if (!accepted) log('warn', 'the host says the job is already finished');
    writeFileAtomic(this.files.reported, new Date().toISOString() + '\n', 0o644);
    log('info', 'result reported', { status: result.status, exitCode: result.exitCode });
  }

  async run() {
    ensurePrivateDir(this.options.stateDir);
    ensurePrivateDir(this.options.secretsDir);
    fs.closeSync(fs.openSync(this.files.log, 'a')); // the log exists from the start, even if nothing runs
    if (fs.existsSync(this.files.reported)) {
      wipeSecrets(this.options.secretsDir, this.files.claim);
      log('info', 'the job was already reported');
      return;
    }
    const claim = await this.claim();
    this.useWorkspace(claim);
    redactValues = secretValues(claim.secrets);
    const agentDir = prepareAgentDir(this.options.secretsDir, this.agentUser);
    const secretEnv = materializeSecrets(agentDir, claim.secrets);
    if (this.agentUser) chownTree(agentDir, this.agentUser);
    writeFileAtomic(path.join(this.options.secretsDir, 'redact.json'), JSON.stringify(redactValues));
    gitAuthEnv = secretEnv.gitAuth;
    const job = claim.job;
    if (!job) {
      // A bare sandbox keeps its secrets for the session (the env file); they go with the sandbox.
      log('info', 'this sandbox has no job');
      return;
    }
    const api = new JobApi(claim.controllerUrl, job.jobId || claim.jobId, claim.runnerCredential);
    const shipper = new LogShipper(api, this.files.log);
    const heartbeat = new Heartbeat(api);
    try {
      let outcome = readJsonFile(this.files.result);
      if (outcome) {
        log('info', 'the job already has an outcome; delivering it', { status: outcome.status });
      } else {
        shipper.start();
        try {
          outcome = await this.runJob(claim, job, heartbeat, secretEnv);
        } catch (err) {
          this.appendLog(`the runner failed: ${err.message}`);
          outcome = {
            status: 'FAILED',
            exitCode: null,
            message: `the runner failed: ${err.message}`,
            durationSeconds: 0,
            baseCommit: null,
            headCommit: null,
          };
        }
        writeJsonFile(this.files.result, outcome); // from here on a restart only delivers
      }
      // The agent is done: nothing needs the credentials any more (delivery uses the runner credential).
      gitAuthEnv = {};
      wipeSecrets(this.options.secretsDir, this.files.claim);
      await this.report(api, shipper, heartbeat, outcome);
    } finally {
      heartbeat.stop();
      shipper.stopped = true;
    }
  }
}

const seconds = (ms) => Math.round(ms / 100) / 10;

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** One sentence for the log and the result message; the paths go only to the log and report.json. */
function patchRedactionSummary(redactions, withheld) {
  const parts = [];
  if (redactions > 0)
    parts.push(
      `${plural(redactions, 'secret value')} replaced with ${REDACTED}, so it will not apply as written at those places`,
    );
  if (withheld > 0) parts.push(`${plural(withheld, 'binary file')} holding a secret left out`);
  return `changes.patch: ${parts.join('; ')}`;
}

/** `--redact VALUES_FILE`: the filter between the agent and its log (see REDACTING_AGENT_WRAPPER). */
async function redactMain(valuesFile) {
  // The values file may be wiped while the agent still runs; what we read at start is what counts.
  const values = JSON.parse(fs.readFileSync(valuesFile, 'utf8'));
  process.on('SIGTERM', () => process.exit(0));
  await redactStream(Array.isArray(values) ? values.map(String) : [], process.stdin, process.stdout);
}

async function main() {
  if (process.argv[2] === '--redact') return redactMain(process.argv[3]);
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    log('error', err.message);
    process.exit(2);
  }
  // The sandbox is powered off with SIGTERM; every step is resumable from the state dir.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      log('info', 'stopping', { signal });
      process.exit(0);
    });
  }
  const runner = new Runner(options);
  for (;;) {
    try {
      await runner.run();
      break;
    } catch (err) {
      log('error', 'the runner could not finish', { error: err.message, permanent: err instanceof PermanentError });
      if (options.exitWhenDone) process.exit(1);
      if (err instanceof PermanentError) break;
      await sleep(IDLE_RETRY_MS); // the host was unreachable for the whole retry deadline: try again later
    }
  }
  if (options.exitWhenDone) process.exit(0);
  // In a sandbox the runner lives as long as the sandbox: idle until the host powers it off.
  setInterval(() => undefined, 1 << 30);
}

// Required by the tests for the redaction functions; run as a program everywhere else.
if (require.main === module) void main();
module.exports = { redactStream, secretValues };
