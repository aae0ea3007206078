// What the runner sends the host while the job runs: its phase (heartbeats) and agent.log as it grows.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError } from './errors';
import { fileSize } from './files';
import type { JobApi } from './host-api';
import { errorMessage, log } from './log';

const LOG_CHUNK_BYTES = 256 * 1024;
const SHIP_INTERVAL_MS = 300;
const HEARTBEAT_INTERVAL_MS = 5000;

/** Sends the current phase on every change and every few seconds, until stopped. */
export class Heartbeat {
  private phase: string | undefined = undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly api: JobApi) {
    this.timer = setInterval(() => this.phase && void this.api.heartbeat(this.phase), HEARTBEAT_INTERVAL_MS);
  }

  set(phase: string, message?: string): void {
    this.phase = phase;
    void this.api.heartbeat(phase, message);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Ships agent.log from the offset the host acknowledges, so a restarted runner (or a lost response)
 * neither loses nor repeats bytes: the host skips any overlap itself.
 */
export class LogShipper {
  private acked: number | undefined = undefined;
  private loop: Promise<void> | undefined = undefined;
  stopped = false;

  constructor(
    private readonly api: JobApi,
    private readonly file: string,
  ) {}

  /** Ships everything the file holds now; returns that size. */
  async shipOnce(): Promise<number> {
    if (this.acked === undefined) this.acked = await this.api.postLog(0, Buffer.alloc(0)); // "how much do you have?"
    const size = fileSize(this.file);
    let stalls = 0;
    while (this.acked < size) {
      const length = Math.min(LOG_CHUNK_BYTES, size - this.acked);
      const chunk = Buffer.alloc(length);
      const fd = fs.openSync(this.file, 'r');
      try {
        fs.readSync(fd, chunk, 0, length, this.acked);
      } finally {
        fs.closeSync(fd);
      }
      const before: number = this.acked;
      this.acked = await this.api.postLog(before, chunk);
      // A host that keeps answering without taking bytes must not turn this into a busy loop.
      if (this.acked <= before && ++stalls > 20) throw new Error(`the host keeps its log at ${this.acked} bytes`);
      if (this.acked <= before && stalls > 3) await sleep(1000);
    }
    return size;
  }

  start(): void {
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.shipOnce();
        } catch (err) {
          log('warn', 'log shipping failed', { error: errorMessage(err) });
          if (err instanceof PermanentError) return; // flush() will meet the same error and report it
        }
        await sleep(SHIP_INTERVAL_MS);
      }
    })();
  }

  /** Stops the background loop and ships until the host holds the whole local file. */
  async flush(): Promise<void> {
    this.stopped = true;
    if (this.loop) await this.loop;
    this.loop = undefined;
    while (this.acked === undefined || this.acked < fileSize(this.file)) await this.shipOnce();
  }
}
