// The workspace workflow's rules, without a server: one holder, a first-come line, --no-wait, the history.
import { workspaceNameSchema, workspaceSizeSchema, jobRequestSchema } from '../common/schemas';
import { WorkspaceBook } from '../workflows/workspace-book';

const job = (id: string, since = 0) => ({ workflowId: id, jobId: id, since });

function availableBook(): WorkspaceBook {
  const book = new WorkspaceBook('ws');
  book.status = 'AVAILABLE';
  return book;
}

describe('the workspace book', () => {
  test('one holder at a time; the next in line gets it when the holder lets go', () => {
    const book = availableBook();
    expect(book.request(job('a'), true)).toEqual({ queued: true });
    expect(book.admit(1)?.jobId).toBe('a');
    expect(book.status).toBe('ATTACHED');
    expect(book.request(job('b'), true)).toEqual({ queued: true });
    expect(book.admit(2)).toBeUndefined();
    book.attached('a', 7001);
    expect(book.release('a', 3)).toBe(true);
    expect(book.status).toBe('AVAILABLE');
    expect(book.admit(4)?.jobId).toBe('b');
    expect(book.attachments).toEqual([
      { jobId: 'a', workflowId: 'a', vmid: 7001, grantedAt: 1, releasedAt: 3 },
      { jobId: 'b', workflowId: 'b', grantedAt: 4 },
    ]);
  });

  test('--no-wait is refused at once, naming the holder; a repeated request is granted again', () => {
    const book = availableBook();
    book.request(job('a'), false);
    book.admit(1);
    expect(book.request(job('b'), false)).toEqual({ refused: 'workspace ws is attached to the sandbox of job a' });
    expect(book.waiting).toHaveLength(0);
    expect(book.request(job('a'), false)).toEqual({ granted: true });
  });

  test('a waiter that leaves the line is forgotten; strangers release nothing', () => {
    const book = availableBook();
    book.request(job('a'), true);
    book.admit(1);
    book.request(job('b'), true);
    expect(book.release('b', 2)).toBe(true);
    expect(book.release('nobody', 2)).toBe(false);
    expect(book.holder?.jobId).toBe('a');
    expect(book.waiting).toHaveLength(0);
  });

  test('nothing is lent while the storage is being created', () => {
    const book = new WorkspaceBook('ws');
    book.request(job('a'), true);
    expect(book.admit(1)).toBeUndefined();
    book.status = 'AVAILABLE';
    expect(book.admit(2)?.jobId).toBe('a');
  });

  test('a continued run carries holder, line and history', () => {
    const book = availableBook();
    book.request(job('a'), true);
    book.admit(1);
    book.request(job('b'), true);
    const next = new WorkspaceBook('ws', book.carried());
    expect(next.holder?.jobId).toBe('a');
    expect(next.waiting.map((w) => w.jobId)).toEqual(['b']);
    expect(next.release('a', 5)).toBe(true);
    expect(next.attachments[0]).toMatchObject({ jobId: 'a', releasedAt: 5 });
  });
});

describe('workspace input', () => {
  test('names and sizes', () => {
    expect(workspaceNameSchema.safeParse('my-ws1').success).toBe(true);
    for (const bad of ['', '-x', 'Upper', 'a/b', '../x', 'x'.repeat(41)]) {
      expect(workspaceNameSchema.safeParse(bad).success).toBe(false);
    }
    expect(workspaceSizeSchema.parse('20G')).toBe(20);
    expect(workspaceSizeSchema.parse('20GiB')).toBe(20);
    expect(workspaceSizeSchema.parse('1T')).toBe(1024);
    expect(workspaceSizeSchema.parse('5')).toBe(5);
    expect(workspaceSizeSchema.safeParse('0G').success).toBe(false);
    expect(workspaceSizeSchema.safeParse('1.5G').success).toBe(false);
    expect(workspaceSizeSchema.safeParse('17T').success).toBe(false);
  });

  test('a job request names the workspace field that is wrong', () => {
    const base = { jobId: 'job-1', profile: 'local' };
    expect(jobRequestSchema.safeParse({ ...base, workspace: { name: 'ws' } }).success).toBe(true);
    const bad = jobRequestSchema.safeParse({ ...base, workspace: { name: 'Bad!' } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['workspace', 'name']);
    expect(jobRequestSchema.safeParse({ ...base, workspace: { name: 'ws', extra: 1 } }).success).toBe(false);
  });
});
