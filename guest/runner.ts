// The runner: claims its job, clones the repo, runs the agent, ships log, artifacts and result. Every step
// leaves a file in the state dir, so a runner that is killed and restarted carries on where the last one stopped.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GuestBootstrap, GuestClaimResponse } from '../common/contract';
import { AgentProcess } from './agent-process';
import { agentBin, agentTitle, isAgentKind } from './agents';
import { Checkout } from './checkout';
import { deliver } from './delivery';
import { PermanentError } from './errors';
import { ensurePrivateDir, readJsonFile, writeFileAtomic, writeJsonFile } from './files';
import { setGitAuthEnv } from './git';
import { call, JobApi, refusal } from './host-api';
import { appendRunnerLine, errorMessage, log } from './log';
import { Heartbeat, LogShipper } from './log-shipper';
import { stateFiles, type RunnerOptions, type StateFiles } from './options';
import { procStat } from './processes';
import { secretValues, setRedactValues } from './redaction';
import {
  chownTree,
  lookupAgentUser,
  materializeSecrets,
  prepareAgentDir,
  wipeSecrets,
  type AgentUser,
  type SecretEnv,
} from './secrets';
import type { AgentRecord, ClaimRecord, GuestJob, Outcome } from './state';
import { seconds } from './time';

export class Runner {
  private readonly files: StateFiles;
  private readonly checkout: Checkout;
  private readonly agent: AgentProcess;
  /** The unprivileged account the agent runs as (absent: the runner's own). */
  private readonly agentUser: AgentUser | undefined;

  constructor(private readonly options: RunnerOptions) {
    const agentUser = options.agentUser ? lookupAgentUser(options.agentUser) : undefined;
    this.files = stateFiles(options);
    this.checkout = new Checkout(options.workDir, agentUser);
    this.agent = new AgentProcess(this.files, path.join(options.secretsDir, 'agent'), options.secretsDir, agentUser);
    this.agentUser = agentUser;
  }

  /** Claims the job with the one-time token, or resumes with the credential an earlier runner got. */
  private async claim(): Promise<ClaimRecord> {
    const cached = readJsonFile<ClaimRecord>(this.files.claim);
    if (cached && typeof cached.runnerCredential === 'string') {
      log('info', 'resuming with the stored claim', { jobId: cached.job ? cached.job.jobId : null });
      return cached;
    }
    const bootstrap = readJsonFile<Partial<GuestBootstrap>>(this.options.bootstrap);
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
    const answer = res.body as Partial<GuestClaimResponse>;
    if (typeof answer.runnerCredential !== 'string')
      throw new PermanentError('bootstrap claim: the host sent no runner credential');
    const claim: ClaimRecord = {
      controllerUrl: bootstrap.controllerUrl,
      jobId: bootstrap.jobId as string, // the host accepted the claim: it named a valid job id
      allowLocalRepos: bootstrap.allowLocalRepos === true,
      allowLoopbackHttp: bootstrap.allowLoopbackHttp === true,
      localRepo: typeof bootstrap.localRepo === 'string' ? bootstrap.localRepo : null,
      workspace: typeof bootstrap.workspace === 'string' ? bootstrap.workspace : null,
      runnerCredential: answer.runnerCredential,
      job: answer.job || null,
      secrets: answer.secrets || null,
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
  private claimCredential(): string {
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

  private appendLog(line: string): void {
    appendRunnerLine(this.files.log, line);
  }

  /** Everything from the clone to the agent's changes; returns the outcome (never throws for job problems). */
  private async runJob(
    claim: ClaimRecord,
    job: GuestJob,
    heartbeat: Heartbeat,
    secretEnv: SecretEnv,
  ): Promise<Outcome> {
    let agent = readJsonFile<AgentRecord>(this.files.agent);
    const preparingSince = Date.now();
    const failure = (message: string, extra: Partial<Outcome> = {}): Outcome => {
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

    let running: AgentRecord & { pid: number };
    if (!agent) {
      if (typeof job.agentCommand !== 'string' || job.agentCommand.trim() === '')
        return failure('the job has no agent command');
      fs.writeFileSync(this.files.task, String(job.task ?? ''), { mode: 0o600 });
      let known;
      if (isAgentKind(job.agentKind)) {
        known = this.agent.known(job.agentKind);
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
        baseCommit = await this.checkout.prepare(job, claim);
      } catch (err) {
        return failure(`preparing the repository failed: ${errorMessage(err)}`);
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
      const pid = this.agent.start(job, secretEnv, this.checkout);
      const stat = procStat(pid);
      running = { ...agent, pid, pidStartTime: stat ? stat.startTime : undefined };
      writeJsonFile(this.files.agent, running);
      log('info', 'agent started', { pid });
    } else if (!agent.pid) {
      const pid = await this.agent.pid();
      if (!pid) return failure('the runner stopped while starting the agent; not starting it a second time');
      running = { ...agent, pid };
      log('info', 'reattaching to the agent an earlier runner started', { pid });
    } else {
      running = { ...agent, pid: agent.pid };
      log('info', 'reattaching to the agent an earlier runner started', { pid: agent.pid });
    }
    agent = running;

    heartbeat.set('running');
    const timeoutSeconds = Number(job.timeoutSeconds) > 0 ? Number(job.timeoutSeconds) : 0;
    const { code, timedOut } = await this.agent.wait(running, timeoutSeconds);
    const durationSeconds = seconds(Date.now() - running.startedAt);
    log('info', 'agent finished', { exitCode: code, timedOut });

    heartbeat.set('collecting');
    let changes;
    try {
      changes = await this.checkout.collectChanges(running.baseCommit, this.files.patch, this.files.log);
    } catch (err) {
      const how = timedOut ? 'timed out' : `exited with code ${code}`;
      return failure(`the agent ${how}, but collecting its changes failed: ${errorMessage(err)}`, { durationSeconds });
    }
    const kind = running.kind;
    const outcome = {
      exitCode: code,
      durationSeconds,
      baseCommit: running.baseCommit,
      ...changes,
      ...(kind ? { agent: this.agent.report({ ...running, kind }) } : {}),
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

  async run(): Promise<void> {
    ensurePrivateDir(this.options.stateDir);
    ensurePrivateDir(this.options.secretsDir);
    fs.closeSync(fs.openSync(this.files.log, 'a')); // the log exists from the start, even if nothing runs
    if (fs.existsSync(this.files.reported)) {
      wipeSecrets(this.options.secretsDir, this.files.claim);
      log('info', 'the job was already reported');
      return;
    }
    const claim = await this.claim();
    this.checkout.useWorkspace(claim.workspace);
    const redactValues = secretValues(claim.secrets);
    setRedactValues(redactValues);
    const agentDir = prepareAgentDir(this.options.secretsDir, this.agentUser);
    const secretEnv = materializeSecrets(agentDir, claim.secrets);
    if (this.agentUser) chownTree(agentDir, this.agentUser);
    writeFileAtomic(path.join(this.options.secretsDir, 'redact.json'), JSON.stringify(redactValues));
    setGitAuthEnv(secretEnv.gitAuth);
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
      let outcome = readJsonFile<Outcome>(this.files.result);
      if (outcome) {
        log('info', 'the job already has an outcome; delivering it', { status: outcome.status });
      } else {
        shipper.start();
        try {
          outcome = await this.runJob(claim, job, heartbeat, secretEnv);
        } catch (err) {
          this.appendLog(`the runner failed: ${errorMessage(err)}`);
          outcome = {
            status: 'FAILED',
            exitCode: null,
            message: `the runner failed: ${errorMessage(err)}`,
            durationSeconds: 0,
            baseCommit: null,
            headCommit: null,
          };
        }
        writeJsonFile(this.files.result, outcome); // from here on a restart only delivers
      }
      // The agent is done: nothing needs the credentials any more (delivery uses the runner credential).
      setGitAuthEnv({});
      wipeSecrets(this.options.secretsDir, this.files.claim);
      await deliver(this.files, api, shipper, heartbeat, outcome);
    } finally {
      heartbeat.stop();
      shipper.stopped = true;
    }
  }
}
