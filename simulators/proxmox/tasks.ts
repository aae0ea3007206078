// Simulated worker tasks (UPIDs in the real format, running → stopped with exitstatus) and flock waits.

export interface SimTask {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  log: string[];
}

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');

export class TaskTable {
  private readonly tasks = new Map<string, SimTask>();
  private nextPid = 0x1000;
  private readonly pstart = 0x03ab00c3;

  constructor(private readonly node: string) {}

  /** Returns the UPID at once (fork_worker writes the task file first); the worker runs afterwards. */
  start(
    type: string,
    id: string | number,
    user: string,
    worker: (log: (line: string) => void) => Promise<void>,
  ): string {
    const pid = this.nextPid++;
    const starttime = Math.floor(Date.now() / 1000);
    const upid = `UPID:${this.node}:${hex(pid, 8)}:${hex(this.pstart, 8)}:${hex(starttime, 8)}:${type}:${id}:${user}:`;
    const task: SimTask = {
      upid,
      node: this.node,
      pid,
      pstart: this.pstart,
      starttime,
      type,
      id: String(id),
      user,
      status: 'running',
      log: [],
    };
    this.tasks.set(upid, task);
    setImmediate(() => {
      worker((line) => task.log.push(line)).then(
        () => {
          task.log.push('TASK OK');
          task.exitstatus = 'OK';
          task.status = 'stopped';
        },
        (err: Error) => {
          const text = err.message.replace(/\n/g, ' ').trim();
          task.log.push(`TASK ERROR: ${text}`);
          task.exitstatus = text;
          task.status = 'stopped';
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

  /** Every task since the simulator started, oldest first (what the node's task list would show). */
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
