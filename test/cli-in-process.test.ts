// The CLI parsed and run in-process against a capturing ctx.io (as gh tests its commands): usage errors, and the
// output of `job list` and `job show` from an injected jobs layer. No Temporal here: whatever would reach the
// server is the fake's, and the fake refuses anything it was not given.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../common/config';
import type { JobDescription, JobRequest } from '../common/contract';
import type { CliContext } from '../cli/context';
import { CapturingIo } from '../cli/io';
import { errorSchema, jobDocumentSchema, jobListSchema } from '../cli/json-schemas';
import { Jobs, type ListedJob } from '../cli/jobs';
import { runCli } from '../cli/program';

const STARTED_AT = Date.parse('2026-11-29T10:00:00Z');

/** The real request building, with the server's side (start, list, describe, lines) answered from memory. */
class FakeJobs extends Jobs {
  readonly started: JobRequest[] = [];
  readonly queries: string[] = [];

  constructor(
    ctx: CliContext,
    private readonly listed: ListedJob[],
    private readonly described: Map<string, JobDescription>,
    private readonly places: Map<string, number>,
  ) {
    super(ctx);
  }

  override async start(request: JobRequest): Promise<void> {
    this.started.push(request);
  }
  override async list(query: string, limit: number): Promise<ListedJob[]> {
    this.queries.push(query);
    const vmid = /AgentlabVmid = (\d+)/.exec(query)?.[1];
    return this.listed.filter((j) => vmid === undefined || j.vmid === Number(vmid)).slice(0, limit);
  }
  override async describe(jobId: string): Promise<JobDescription> {
    const d = this.described.get(jobId);
    if (!d) throw new Error(`the fake has no job ${jobId}`);
    return d;
  }
  override async placesInLine(jobs: { jobId: string }[]): Promise<Map<string, number>> {
    return new Map(jobs.flatMap((j) => (this.places.has(j.jobId) ? [[j.jobId, this.places.get(j.jobId)!]] : [])));
  }
  override handle(): never {
    throw new Error('the fake has no Temporal client');
  }
  override liveHandle(): never {
    throw new Error('the fake has no Temporal client');
  }
}

const listed: ListedJob[] = [
  {
    jobId: 'job-waiting',
    state: 'REQUESTED',
    jobStatus: 'QUEUED',
    profile: 'local',
    node: 'node-a',
    task: 'fix the build\nthen the tests',
    startedAt: STARTED_AT + 60_000,
    executionStatus: 'RUNNING',
  },
  {
    jobId: 'job-done',
    state: 'DESTROYED',
    jobStatus: 'COMPLETED',
    profile: 'local',
    vmid: 7003,
    node: 'node-a',
    memoUnreadable: 'no key',
    startedAt: STARTED_AT,
    closedAt: STARTED_AT + 30_000,
    executionStatus: 'COMPLETED',
  },
];

const done: JobDescription = {
  jobId: 'job-done',
  state: 'DESTROYED',
  jobStatus: 'COMPLETED',
  hasJob: true,
  profile: 'local',
  node: 'node-a',
  vmid: 7003,
  address: '127.0.0.1',
  keepalive: false,
  repo: 'https://git.example/repo.git',
  exitCode: 0,
  message: 'done',
  provisioningAttempt: 1,
  cleanSnapshot: true,
  snapshots: [],
  timeline: [
    { state: 'REQUESTED', at: STARTED_AT },
    { state: 'READY', at: STARTED_AT + 5_000 },
    { state: 'DESTROYED', at: STARTED_AT + 30_000, note: 'job ended' },
  ],
};

async function cli(args: string[]) {
  const io = new CapturingIo();
  const dataDir = mkdtempSync(join(tmpdir(), 'agentlab-in-process-'));
  const config = parseConfig({ dataDir }, 'in-process test', {});
  let jobs: FakeJobs | undefined;
  let code: number | undefined;
  await runCli(['node', 'agentlab', ...args], {
    io,
    setExitCode: (exitCode) => {
      code = exitCode;
    },
    loadConfig: () => config,
    jobs: (ctx) => (jobs = new FakeJobs(ctx, listed, new Map([['job-done', done]]), new Map([['job-waiting', 2]]))),
  });
  return { code, stdout: io.stdout, stderr: io.stderr, started: jobs?.started ?? [], queries: jobs?.queries ?? [] };
}

describe('the CLI in-process', () => {
  test.each([
    [['job', 'run', '--task', 'x'], '--repo is required'],
    [['job', 'run', '--repo', 'https://git.example/r.git'], '--task or --task-file is required'],
    [['job', 'run', '--repo', 'https://git.example/r.git', '--task', 'x', '--ttl', 'soon'], '--ttl: '],
    [['job', 'run', '--repo', 'https://git.example/r.git', '--task', 'x', '--profile', 'nope'], '--profile: unknown'],
    [['job', 'run', '--repo', 'https://git.example/r.git', '--task', 'x', '--ref', '-x'], '--ref: '],
    [['job', 'run', '--repo', 'https://git.example/r.git', '--task', 'x', '--id', 'a b'], '--id: '],
    [['job', 'run', '--repo', '--upload-pack=evil', '--task', 'x'], '--repo: '],
    [['sandbox', 'new', '--ttl', '0'], '--ttl: '],
    [['job', 'list', '--limit', '0'], '--limit: expected a positive integer'],
    [['job', 'list', '--status', 'DONE'], '--status: expected one of'],
    [['sandbox', 'list', '--state', 'UP'], '--state: expected one of'],
    [['sandbox', 'snapshot', 'save', 'job-done', 'clean'], 'snapshot name "clean" is reserved'],
  ])('%j is refused with exit 2, naming the field, before anything starts', async (args, message) => {
    const run = await cli(args);
    expect(run.stderr).toContain(`error: ${message}`);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.started).toEqual([]);
  });

  test('--json puts the usage error in the JSON envelope on stdout', async () => {
    const run = await cli(['job', 'run', '--task', 'x', '--json']);
    expect(run.code).toBe(2);
    const { error } = errorSchema.parse(JSON.parse(run.stdout));
    expect(error).toMatchObject({ code: 'usage', message: '--repo is required' });
    expect(run.started).toEqual([]);
  });

  test("commander's own usage errors go through ctx.io too, with exit 2", async () => {
    const run = await cli(['job', 'show']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: missing required argument 'job'");
  });

  test('a valid job run --detach starts exactly the request it built and prints its id', async () => {
    const args = ['job', 'run', '--repo', 'https://git.example/r.git', '--task', 'x', '--id', 'job-new', '--detach'];
    const run = await cli(args);
    expect(run.code).toBe(0);
    expect(run.started).toEqual([
      expect.objectContaining({ jobId: 'job-new', repo: 'https://git.example/r.git', task: 'x', profile: 'local' }),
    ]);
    expect(run.stdout).toBe('job-new\n');
    expect(run.stderr).toContain('job job-new started; Web UI: ');
  });

  test('job list prints the aligned table, with the place in line and an unreadable memo', async () => {
    const run = await cli(['job', 'list', '--status', 'QUEUED', '--state', 'REQUESTED', '--limit', '5']);
    expect(run.code).toBe(0);
    expect(run.queries).toEqual(['AgentlabJobStatus = "QUEUED" AND AgentlabState = "REQUESTED"']);
    expect(run.stdout).toBe(
      [
        'JOB          STATUS     STATE      PROFILE  VMID  STARTED               TASK',
        'job-waiting  QUEUED #2  REQUESTED  local    -     2026-11-29T10:01:00Z  fix the build',
        'job-done     COMPLETED  DESTROYED  local    7003  2026-11-29T10:00:00Z  (encrypted)',
        '',
      ].join('\n'),
    );
    const json = jobListSchema.parse(JSON.parse((await cli(['job', 'list', '--json'])).stdout));
    expect(json.jobs.map((j) => j.jobId)).toEqual(['job-waiting', 'job-done']);
  });

  test('job show resolves a VMID and prints the fields, or the JSON document', async () => {
    const run = await cli(['job', 'show', '7003']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        'Job:           job-done',
        'Status:        COMPLETED',
        'Place in line: -',
        'Exit code:     0',
        'Message:       done',
        'Profile:       local',
        'Repo:          https://git.example/repo.git @ HEAD',
        'Workspace:     -',
        'Sandbox:       vmid 7003 on node-a',
        'State:         DESTROYED',
        'Address:       127.0.0.1',
        'Lease expires: -',
        'Keepalive:     no',
        '',
      ].join('\n'),
    );
    const json = jobDocumentSchema.parse(JSON.parse((await cli(['job', 'show', 'job-done', '--json'])).stdout));
    expect(json).toMatchObject({ jobId: 'job-done', status: 'COMPLETED', sandbox: { vmid: 7003 } });
    expect(json.timeline.at(-1)).toEqual({ state: 'DESTROYED', at: '2026-11-29T10:00:30Z', note: 'job ended' });
  });

  test('a VMID no sandbox had is not found (exit 3)', async () => {
    const run = await cli(['job', 'show', '9999']);
    expect(run.code).toBe(3);
    expect(run.stderr).toBe('error: no sandbox with VMID 9999\n');
  });
});
