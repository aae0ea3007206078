// A client of the QEMU guest agent (qemu-guest-agent in the image) over the Unix socket QEMU exposes for its
// virtio-serial port: the guest's addresses and a clean shutdown, with no network path into the guest.
import { connect, type Socket } from 'node:net';

export class GuestAgentError extends Error {}

/** The agent's answer to one command; `error` when it refused it. */
interface Reply {
  return?: unknown;
  error?: { class: string; desc: string };
}

/** Reads the agent's replies, one JSON document a line. */
function lineReader(socket: Socket): () => Promise<Reply> {
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (!line) continue;
      const next = waiting.shift();
      if (next) next(line);
      else lines.push(line);
    }
  });
  return () =>
    new Promise<string>((resolve) => {
      const line = lines.shift();
      if (line !== undefined) resolve(line);
      else waiting.push(resolve);
    }).then((line) => JSON.parse(line) as Reply);
}

/**
 * Runs one guest agent command and returns its result. The agent may still be starting, or a reply to an
 * earlier caller's command may still be queued: guest-sync with a fresh id first, skipping anything else,
 * makes the next reply ours. `noReply`: commands such as guest-shutdown that answer nothing on success.
 */
export async function guestAgentCommand<T = unknown>(
  socketPath: string,
  execute: string,
  options: { arguments?: Record<string, unknown>; timeoutMs?: number; noReply?: boolean } = {},
): Promise<T | undefined> {
  const socket = connect(socketPath);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const closed = new Promise<never>((_, reject) => {
    socket.once('error', reject);
    socket.once('close', () => reject(new GuestAgentError(`guest agent socket ${socketPath} closed`)));
  });
  const timer = new Promise<never>((_, reject) => {
    const handle = setTimeout(
      () => reject(new GuestAgentError(`guest agent: ${execute} took over ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('close', () => clearTimeout(handle));
  });
  const send = (command: object) => socket.write(JSON.stringify(command) + '\n');
  const exchange = async (): Promise<T | undefined> => {
    const nextReply = lineReader(socket);
    const syncId = Math.floor(Math.random() * 2 ** 31);
    send({ execute: 'guest-sync', arguments: { id: syncId } });
    while ((await nextReply()).return !== syncId) {
      /* a reply meant for someone before us */
    }
    send({ execute, ...(options.arguments ? { arguments: options.arguments } : {}) });
    if (options.noReply) {
      await new Promise<void>((resolve) => socket.end(resolve)); // flushed: destroy() would drop it
      return undefined;
    }
    const reply = await nextReply();
    if (reply.error) throw new GuestAgentError(`guest agent: ${execute}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return as T;
  };
  try {
    return await Promise.race([exchange(), closed, timer]);
  } finally {
    socket.destroy();
  }
}

/** One interface as guest-network-get-interfaces describes it. */
export interface GuestInterface {
  name: string;
  'ip-addresses'?: { 'ip-address-type': 'ipv4' | 'ipv6'; 'ip-address': string; prefix: number }[];
}

/** The guest's IPv4 addresses on its non-loopback interfaces, as the Proxmox backend reads them from its agent. */
export async function guestIpv4Addresses(socketPath: string, timeoutMs?: number): Promise<string[]> {
  const interfaces =
    (await guestAgentCommand<GuestInterface[]>(socketPath, 'guest-network-get-interfaces', { timeoutMs })) ?? [];
  return interfaces
    .filter((iface) => iface.name !== 'lo')
    .flatMap((iface) => iface['ip-addresses'] ?? [])
    .filter((address) => address['ip-address-type'] === 'ipv4')
    .map((address) => address['ip-address']);
}
