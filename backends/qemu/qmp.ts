// One command over a VM's QMP socket (QEMU's machine protocol): what the QEMU backend needs of a running VM
// that qemu-img cannot do while QEMU holds the disk's lock, such as an internal snapshot.
import { connect } from 'node:net';

export class QmpError extends Error {}

interface Message {
  QMP?: unknown;
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
}

/** Runs `execute` after the capabilities handshake; events QEMU sends meanwhile are skipped. */
export async function qmpCommand<T = unknown>(
  socketPath: string,
  execute: string,
  args?: Record<string, unknown>,
  timeoutMs = 30_000,
): Promise<T> {
  const socket = connect(socketPath);
  socket.setEncoding('utf8');
  let buffered = '';
  const queue: Message[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (line) queue.push(JSON.parse(line) as Message);
    }
    wake?.();
  });
  const failed = new Promise<never>((_, reject) => {
    socket.once('error', reject);
    socket.once('close', () => reject(new QmpError(`QMP socket ${socketPath} closed`)));
    const timer = setTimeout(() => reject(new QmpError(`QMP: ${execute} took over ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => clearTimeout(timer));
  });
  /** The next message that is not an event. */
  const next = async (): Promise<Message> => {
    for (;;) {
      const message = queue.shift();
      if (message && !message.event) return message;
      if (!message) await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  const exchange = async (): Promise<T> => {
    await next(); // the greeting
    socket.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
    await next();
    socket.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
    const reply = await next();
    if (reply.error) throw new QmpError(`QMP: ${execute}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return as T;
  };
  try {
    return await Promise.race([exchange(), failed]);
  } finally {
    socket.destroy();
  }
}
