// Two hosts, one deployment: workflows run on any worker, each sandbox on the host it is routed to.
import { createExampleRepo } from '../common/example-repo';
import { SCRIPTED_AGENT, TestStack, journal } from './support/stack';

describe('multi-host routing', () => {
  let hostA: TestStack;
  let hostB: TestStack;
  let repo: string;

  beforeAll(async () => {
    const id = Math.random().toString(36).slice(2, 8);
    // Every host of a deployment has the same profiles; this one pins its sandboxes to host B.
    const profiles = [{ name: 'pinned-b', backend: 'local', node: `hostb-${id}` }];
    hostA = await new TestStack({ node: `hosta-${id}`, profiles }).init();
    hostB = await new TestStack({ node: `hostb-${id}`, profiles, taskQueue: hostA.taskQueue }).init();
    await hostA.startWorker();
    await hostB.startWorker();
    repo = await createExampleRepo(hostA.home);
  });
  afterAll(async () => {
    await hostA.close();
    await hostB.close();
  });

  test.each([
    ['--node flag', 'job-route-flag'],
    ['a profile pinned to the node', 'job-route-profile'],
  ])('%s: the sandbox is created on host B only', async (how, jobId) => {
    const routing = how === '--node flag' ? ['--node', hostB.node] : ['--profile', 'pinned-b'];
    const result = await hostA.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      'where am I',
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      jobId,
      '--json',
      ...routing,
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'COMPLETED', sandbox: { node: hostB.node } });
    expect(journal(hostB, jobId).map((e) => e.op)).toEqual(['clone', 'destroy']);
    expect(journal(hostA, jobId)).toEqual([]);
  });
});
