// The agent as a process: found on PATH, started in its own session (it outlives a runner crash),
// waited for (ours or an earlier runner's), timed out, and read back from its log.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentBin, agentError, agentUsage, isAgentKind, prepareAgent, type AgentKind } from './agents';
import type { Checkout } from './checkout';
import { fileSize, writeFileAtomic, writeJsonFile } from './files';
import { appendRunnerLine, errorMessage, log } from './log';
import type { StateFiles } from './options';
import { processRunning, stopGroup } from './processes';
import { valuesToRedact } from './redaction';
import { chownTree, type AgentUser, type SecretEnv } from './secrets';
import type { AgentRecord, AgentReport, GuestJob } from './state';

const POLL_MS = 200;
const PENDING_EXIT_GRACE_MS = 3000;

/** The runner's entry point, which the redacting wrapper runs again in --redact mode. */
const RUNNER_ENTRY = path.join(__dirname, 'agent-runner.js');

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

// With secrets, the agent's output goes through this runner in --redact mode ("$4" node, "$5" the runner's
// entry file, "$6" the values). The exit code is final only once the redactor has written everything
// ("$1.pending" first: a background process holding the pipe open must not hide that the agent has ended).
const REDACTING_AGENT_WRAPPER = [
  'echo $$ > "$2.w" && mv -f "$2.w" "$2"',
  '( $AGENTLAB_AS_AGENT /bin/sh -c "$3" < "$AGENTLAB_TASK_FILE"; echo $? > "$1.pending" ) 2>&1 | "$4" "$5" --redact "$6"',
  'mv -f "$1.pending" "$1" 2>/dev/null',
].join('\n');

export class AgentProcess {
  constructor(
    private readonly files: StateFiles,
    /** The agent's private directory on the secrets tmpfs (secrets.ts prepareAgentDir). */
    private readonly agentDir: string,
    private readonly secretsDir: string,
    private readonly agentUser: AgentUser | undefined,
  ) {}

  /** Where a known agent's binary is on this sandbox's PATH, and the version it reports. */
  known(kind: AgentKind): { path: string | undefined; version: string | undefined } {
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
    let version: string | undefined;
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
      log('warn', 'the agent did not tell its version', { agent: kind, error: errorMessage(err) });
    }
    return { path: found, version };
  }

  /**
   * What report.json says of a known agent: its kind, version, the tokens its own output reports, and
   * its own account of a failure. The log holds only redacted text.
   */
  report(agent: AgentRecord & { kind: AgentKind }): AgentReport {
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
      log('warn', 'reading the agent output failed', { error: errorMessage(err) });
    }
    return { kind: agent.kind, version: agent.version || null, usage: usage || null, error: error || null };
  }

  /** The agent's home and identity: its own directory on the tmpfs, so its CLIs' config dies with the sandbox. */
  private env(job: GuestJob, secretEnv: SecretEnv): Record<string, string> {
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
  private taskFile(job: GuestJob): string {
    const file = path.join(this.agentDir, 'task.txt');
    writeFileAtomic(file, String(job.task ?? ''));
    if (this.agentUser) fs.chownSync(file, this.agentUser.uid, this.agentUser.gid);
    return file;
  }

  /**
   * Starts the agent in its own session, writing to agent.log (through the redactor when there are
   * secrets): it outlives a runner crash.
   */
  start(job: GuestJob, secretEnv: SecretEnv, checkout: Checkout): number {
    const logFd = fs.openSync(this.files.log, 'a');
    const redacting = valuesToRedact().length > 0;
    const args = redacting
      ? [REDACTING_AGENT_WRAPPER, 'agentlab-agent', this.files.agentExit, this.files.agentPid, job.agentCommand]
      : [AGENT_WRAPPER, 'agentlab-agent', this.files.agentExit, this.files.agentPid, job.agentCommand];
    if (redacting) args.push(process.execPath, RUNNER_ENTRY, path.join(this.secretsDir, 'redact.json'));
    let child;
    try {
      child = spawn('/bin/sh', ['-c', ...args], {
        cwd: checkout.repoDir,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: {
          ...process.env,
          ...this.env(job, secretEnv),
          ...secretEnv.env,
          ...(secretEnv.envFile ? { AGENTLAB_ENV_FILE: secretEnv.envFile } : {}),
          GIT_TERMINAL_PROMPT: '0',
          PWD: checkout.repoDir,
          AGENTLAB_TASK_FILE: this.taskFile(job),
          AGENTLAB_TASK: job.task,
          AGENTLAB_JOB_ID: job.jobId,
          AGENTLAB_REPO_DIR: checkout.repoDir,
          ...(checkout.workspaceDir ? { AGENTLAB_WORKSPACE: checkout.workspaceDir } : {}),
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

  /** The recorded exit code: undefined while there is none, null when the file holds no number. */
  private readExit(file = this.files.agentExit): number | null | undefined {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      return undefined;
    }
    const code = Number(text);
    return text !== '' && Number.isInteger(code) ? code : null;
  }

  /** The agent's pid, from our own record or the wrapper's; waits briefly for a wrapper that just started. */
  async pid(): Promise<number | undefined> {
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

  /** Waits for the agent (ours or an earlier runner's); enforces the timeout. */
  async wait(
    agent: AgentRecord & { pid: number },
    timeoutSeconds: number,
  ): Promise<{ code: number | null; timedOut: boolean }> {
    const pid = agent.pid;
    const deadline = timeoutSeconds > 0 ? agent.startedAt + timeoutSeconds * 1000 : Infinity;
    let timedOut = agent.timedOut === true;
    let code: number | null | undefined;
    let pendingSince: number | undefined;
    while (!timedOut) {
      code = this.readExit();
      if (code !== undefined) break;
      // The agent has ended but its output is still draining through the redactor: give it a moment.
      const pending = this.readExit(this.files.agentExitPending);
      if (typeof pending === 'number') {
        pendingSince = pendingSince || Date.now();
        if (Date.now() - pendingSince > PENDING_EXIT_GRACE_MS) {
          code = pending;
          break;
        }
      }
      if (!processRunning(pid, agent.pidStartTime)) {
        code = this.readExit(); // it may have finished between the two checks
        break;
      }
      if (Date.now() >= deadline) {
        timedOut = true;
        writeJsonFile(this.files.agent, { ...agent, timedOut: true }); // a restarted runner must still say TIMEOUT
        appendRunnerLine(this.files.log, `agent timed out after ${timeoutSeconds}s; stopping it`);
        log('warn', 'agent timed out', { timeoutSeconds });
        break;
      }
      await sleep(POLL_MS);
    }
    // Also stops whatever the agent left running in its group, so the log is final once we ship it.
    await stopGroup(pid);
    return timedOut ? { code: 124, timedOut: true } : { code: code === undefined ? null : code, timedOut: false };
  }
}
