// A job run through the CLI is visible in Temporal's Web UI, driven in headless Chromium (Debian's
// `chromium`, never a downloaded browser): found by a search-attribute query, opened, and showing its
// status, our search attributes, its memo and its activities. Screenshots go to test-artifacts/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createExampleRepo } from '../common/example-repo';
import { SCRIPTED_AGENT, TestStack } from './support/stack';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', 'test-artifacts');
const JOB_ID = `job-web-ui-${Date.now().toString(36)}`;
const TASK = 'say hello to the Web UI';
const ACTIVITIES = [
  'resolveProfile',
  'allocateVmid',
  'cloneVm',
  'configureVm',
  'startVm',
  'waitForGuestAddress',
  'destroyVm',
];

function uiUrl(): string {
  const url = process.env.AGENTLAB_TEST_TEMPORAL_UI;
  if (!url) throw new Error('AGENTLAB_TEST_TEMPORAL_UI is unset: the Jest globalSetup did not start the Web UI');
  return url;
}

/**
 * Waits until the page's visible text, its frames' included, contains every needle (the UI renders user
 * metadata, which is markdown, in frames of its own); on timeout, names the missing ones.
 */
async function waitForText(page: Page, needles: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    const texts = await Promise.all(page.frames().map((frame) => frame.innerText('body').catch(() => '')));
    text = texts.join('\n');
    if (needles.every((n) => text.includes(n))) return;
    await page.waitForTimeout(250);
  }
  const missing = needles.filter((n) => !text.includes(n));
  throw new Error(`${page.url()}: missing ${JSON.stringify(missing)}\n${text}`);
}

describe('Temporal Web UI', () => {
  let stack: TestStack;
  let profileDir: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    stack = await new TestStack().init();
    await stack.startWorker();
    profileDir = mkdtempSync(join(tmpdir(), 'agentlab-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      // No background traffic: this machine (and CI) has no network beyond the loopback.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await context?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    await stack?.close();
  });

  test('finds the job by our search attributes and shows its status, attributes and activities', async () => {
    const repo = await createExampleRepo(stack.home);
    const run = await stack.cli([
      'job',
      'run',
      '--repo',
      repo,
      '--task',
      TASK,
      '--agent-command',
      SCRIPTED_AGENT,
      '--id',
      JOB_ID,
      '--json',
    ]);
    expect(run.code).toBe(0);
    const vmid = (JSON.parse(run.stdout) as { sandbox: { vmid: number } }).sandbox.vmid;

    try {
      // The workflow list, filtered by a visibility query on our search attributes.
      const query = 'AgentlabJobStatus="COMPLETED" AND AgentlabProfile="local"';
      await page.goto(`${uiUrl()}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
      const row = page.getByRole('row').filter({ hasText: JOB_ID });
      await row.waitFor();
      expect(await row.innerText()).toMatch(/COMPLETED[\s\S]*jobWorkflow/);

      // The workflow's page: id, status and the activities of the job in its timeline.
      await row.getByRole('link', { name: JOB_ID }).first().click();
      await page.waitForURL(new RegExp(`/workflows/${JOB_ID}/`));
      await waitForText(page, [JOB_ID, 'COMPLETED', 'jobWorkflow', stack.taskQueue, ...ACTIVITIES]);
      await page.screenshot({ path: join(ARTIFACTS, 'web-ui-job-timeline.png'), fullPage: true });

      // Event History names the activity types too.
      await page.getByRole('tab', { name: /Event History/ }).click();
      for (const activity of ['cloneVm', 'startVm', 'waitForGuestAddress', 'destroyVm']) {
        await page
          .getByRole('row')
          .filter({ hasText: 'Activity Task Scheduled' })
          .filter({ hasText: activity })
          .first()
          .waitFor();
      }

      // Our search attributes, as the workflow left them.
      await page.getByRole('tab', { name: 'Search Attributes' }).click();
      await waitForText(page, [
        '"AgentlabState": "DESTROYED"',
        '"AgentlabJobStatus": "COMPLETED"',
        '"AgentlabProfile": "local"',
        `"AgentlabVmid": ${vmid}`,
        `"AgentlabNode": "${stack.node}"`,
        '"AgentlabLeaseExpiresAt": "',
      ]);
      await page.screenshot({ path: join(ARTIFACTS, 'web-ui-job.png'), fullPage: true });

      // And the memo: repo, ref, task.
      await page.getByRole('tab', { name: 'Memo' }).click();
      await waitForText(page, [`"repo": "${repo}"`, '"ref": "HEAD"', `"task": "${TASK}"`]);
    } catch (err) {
      await saveFailure(page);
      throw err;
    }
  });

  test("a running job's console: summary, current details and activity summaries; Send a Signal renews its lease", async () => {
    const repo = await createExampleRepo(mkdtempSync(join(stack.home, 'console-')));
    const jobId = `${JOB_ID}-console`;
    const running = await stack.startSleepingJob(jobId, repo);
    const vmid = running.vmid!;
    try {
      await page.goto(`${uiUrl()}/namespaces/default/workflows/${jobId}`);
      // The timeline names each activity with its summary.
      await waitForText(page, [
        `cloneVm • create local sandbox ${vmid}`,
        `configureVm • configure VM ${vmid}: bootstrap token and cloud-init`,
        `startVm • start VM ${vmid}`,
        'awaitGuestSilence • watch the guest runner',
      ]);
      // User Metadata: the fixed summary and details, and the current details the workflow keeps up to date.
      // The UI renders each as markdown in a frame of its own.
      await page.getByRole('tab', { name: 'User Metadata' }).click();
      await waitForText(page, [
        `wait · ${repo}@HEAD · profile local`,
        `repo: ${repo}`,
        'task: wait',
        'state: RUNNING, job RUNNING',
        `VMID: ${vmid} on ${stack.node}`,
        'lease until',
      ]);
      await page.screenshot({ path: join(ARTIFACTS, 'web-ui-user-metadata.png'), fullPage: true });

      // More Actions → Send a Signal → renewLease {"ttl": "2h"}, as an operator would.
      await page.getByRole('button', { name: 'More Actions' }).click();
      await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
      // The signal names come from the workflow's own metadata query: renewLease is one it defines.
      // (The page holds the Update dialog's select too, hidden: the visible one is the signal dialog's.)
      await page.locator('[data-testid="signal-select-button"]:visible').click();
      // Each option is the signal's name and its description (from the workflow's defineSignal).
      await page.locator('li[role="option"]:visible', { hasText: /^\s*renewLease\s*Renew the lease/ }).click();
      await page.getByRole('textbox', { name: 'Data' }).click();
      // insertText, not typing: the JSON editor would close every bracket and quote typed.
      await page.keyboard.insertText('{"ttl": "2h"}');
      await page.screenshot({ path: join(ARTIFACTS, 'web-ui-send-signal.png') });
      await page.getByRole('button', { name: 'Submit' }).click();

      const renewed = await stack.waitForState(
        jobId,
        (d) => d.leaseExpiresAt! > Date.now() + 90 * 60_000,
        'the Web UI signal to renew the lease to 2 h',
        30_000,
      );
      expect(renewed.state).toBe('RUNNING');
    } catch (err) {
      await saveFailure(page);
      throw err;
    } finally {
      await stack.cli(['sandbox', 'destroy', jobId, '--yes']);
    }
  });
});

async function saveFailure(page: Page): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, 'web-ui-failure.png'), fullPage: true }).catch(() => undefined);
  writeFileSync(join(ARTIFACTS, 'web-ui-failure.html'), await page.content().catch(() => ''));
}
