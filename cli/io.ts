// Where a command's output goes: the process's stdout and stderr, or (in tests) a buffer, so a command can be
// parsed and run in-process and its output read back byte for byte.

export interface CliIo {
  /** The data: tables, JSON documents, the agent's log. */
  out(text: string | Uint8Array): void;
  /** Progress and errors. */
  err(text: string): void;
  /** Whether `err` is a terminal that shows colours (never when NO_COLOR is set, no-color.org). */
  readonly errColor: boolean;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  get errColor() {
    return process.stderr.isTTY === true && !process.env.NO_COLOR;
  },
};

/** Keeps everything written, for tests; never coloured. */
export class CapturingIo implements CliIo {
  private readonly outChunks: Buffer[] = [];
  private readonly errChunks: string[] = [];
  readonly errColor = false;

  out(text: string | Uint8Array): void {
    this.outChunks.push(Buffer.from(text));
  }
  err(text: string): void {
    this.errChunks.push(text);
  }
  get stdout(): string {
    return Buffer.concat(this.outChunks).toString('utf8');
  }
  get stderr(): string {
    return this.errChunks.join('');
  }
}
