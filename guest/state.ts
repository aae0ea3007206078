// What the runner records in its state files (options.ts names them), so a restarted runner carries on.
import type { GuestClaimResponse, GuestSecrets, JobResult } from '../common/contract';
import type { AgentKind, TokenUsage } from './agents';

/** The job as the claim delivered it. */
export type GuestJob = NonNullable<GuestClaimResponse['job']>;

/** claim.json, on the secrets tmpfs: the bootstrap's settings and the claim's answer. */
export interface ClaimRecord {
  controllerUrl: string;
  jobId: string;
  allowLocalRepos: boolean;
  allowLoopbackHttp: boolean;
  localRepo: string | null;
  workspace: string | null;
  runnerCredential: string;
  job: GuestJob | null;
  secrets: GuestSecrets | null;
  /** Set once the agent is done and the bundle is gone from this file. */
  secretsWiped?: boolean;
}

/** agent.json: written before the agent starts (it must never start twice), then with its pid. */
export interface AgentRecord {
  startedAt: number;
  baseCommit: string;
  pid: number | null;
  /** A known agent's kind and the version it reported. */
  kind?: AgentKind;
  version?: string;
  /** /proc's start time of the pid: a reused pid is not our agent. */
  pidStartTime?: string;
  /** Set when the timeout stopped it: a restarted runner must still say TIMEOUT. */
  timedOut?: boolean;
}

/** What report.json says of a known agent. */
export interface AgentReport {
  kind: AgentKind;
  version: string | null;
  usage: TokenUsage | null;
  error: string | null;
}

/** The agent's changes, collected after it ended. */
export interface Changes {
  headCommit: string;
  patchRedactions: number;
  patchFilesWithheld: string[];
}

/** result.json: the job's outcome, kept until it is delivered (a restart only delivers it). */
export interface Outcome {
  status: JobResult['status'];
  exitCode: number | null;
  message: string;
  durationSeconds: number;
  baseCommit: string | null;
  headCommit?: string | null;
  patchRedactions?: number;
  patchFilesWithheld?: string[];
  agent?: AgentReport;
}
