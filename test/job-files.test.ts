// The worker's job folder under crashes: an artifact index left half-written by a killed worker.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACT_INDEX } from '../common/job-folder';
import { JobFiles } from '../worker/job-files';

let dataDir: string;
beforeEach(() => (dataDir = mkdtempSync(join(tmpdir(), 'agentlab-job-files-'))));
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

test('an index truncated by a killed worker is rebuilt from the artifacts, and the upload succeeds', async () => {
  const files = new JobFiles(dataDir);
  await files.writeArtifact('job-1', 'report.json', Buffer.from('{"ok":true}'));
  const dir = join(dataDir, 'jobs', 'job-1', 'artifacts');
  writeFileSync(join(dir, ARTIFACT_INDEX), '{"report.json": {"na'); // what a SIGKILL mid-write left

  await files.writeArtifact('job-1', 'agent.log', Buffer.from('hello\n'));
  const index = JSON.parse(readFileSync(join(dir, ARTIFACT_INDEX), 'utf8')) as Record<string, { size: number }>;
  expect(Object.keys(index).sort()).toEqual(['agent.log', 'report.json']);
  expect(index['report.json']!.size).toBe(11);
});
