// Simulated worker tasks (UPIDs in the real format, running → stopped with exitstatus, SIGTERM from DELETE)
// and flock waits.

export interface SimTask {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  endtime?: number;
  type: string;
  id: string;
  user: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  log: string[];
  abort: AbortController;
}

/** What a task's worker gets: its log, and a sleep that a `DELETE …/tasks/{upid}` (SIGTERM) interrupts. */
export interface TaskContext {
  log: (line: string) => void;
  sleep: (ms: number) => Promise<void>;
  signal: AbortSignal;
}

/** pve-common's generic worker handler dies with this on SIGTERM; clone installs its own. */
export const INTERRUPTED = 'received interrupt';

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

export function interruptibleSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error(INTERRUPTED));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error(INTERRUPTED));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export class TaskTable {
  private readonly tasks = new Map<string, SimTask>();
  private nextPid = 0x1000;
  private readonly pstart = 0x03ab00c3;

  /** Returns the UPID at once (fork_worker writes the task file first); the worker runs afterwards. */
  start(
    node: string,
    type: string,
    id: string | number,
    user: string,
    worker: (ctx: TaskContext) => Promise<void>,
  ): string {
    const pid = this.nextPid++;
    const starttime = Math.floor(Date.now() / 1000);
    const upid = `UPID:${node}:${hex(pid, 8)}:${hex(this.pstart, 8)}:${hex(starttime, 8)}:${type}:${id}:${user}:`;
    const abort = new AbortController();
    const task: SimTask = {
      upid,
      node,
      pid,
      pstart: this.pstart,
      starttime,
      type,
      id: String(id),
      user,
      status: 'running',
      log: [],
      abort,
    };
    this.tasks.set(upid, task);
    const ctx: TaskContext = {
      log: (line) => task.log.push(line),
      sleep: (ms) => interruptibleSleep(ms, abort.signal),
      signal: abort.signal,
    };
    const finish = (exitstatus: string, line: string) => {
      task.log.push(line);
      task.exitstatus = exitstatus;
      task.endtime = Math.floor(Date.now() / 1000);
      task.status = 'stopped';
    };
    setImmediate(() => {
      worker(ctx).then(
        () => finish('OK', 'TASK OK'),
        (err: Error) => {
          const text = err.message.replace(/\n/g, ' ').trim();
          finish(text, `TASK ERROR: ${text}`);
        },
      );
    });
    return upid;
  }

  get(upid: string): SimTask | undefined {
    return this.tasks.get(upid);
  }

  running(): SimTask[] {
    return this.list().filter((t) => t.status === 'running');
  }

  /** Every task since the simulator started, oldest first. */
  list(): SimTask[] {
    return [...this.tasks.values()];
  }
}

/** flock(2) with a wait: PVE's lock_file_full. The holder runs `work`; a waiter past its timeout fails. */
export class FlockTable {
  private readonly tails = new Map<string, Promise<void>>();

  async with<T>(key: string, waitMs: number, timeoutMessage: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), waitMs)));
    const got = await Promise.race([previous.then(() => 'ok' as const), timedOut]);
    clearTimeout(timer);
    if (got === 'timeout') {
      // Give up our place: whoever queued behind us waits for the previous holder only.
      void previous.then(release);
      if (this.tails.get(key) === tail) this.tails.delete(key);
      throw new Error(timeoutMessage);
    }
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
