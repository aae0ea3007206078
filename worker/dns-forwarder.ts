// DNS for isolated sandboxes: a forwarder on the bridge's gateway, UDP and TCP (answers too large for UDP
// come back truncated and resolvers retry over TCP). Sandboxes may not reach a LAN resolver (private
// ranges are dropped) nor the host's loopback stub (127.0.0.53 is their own loopback), so their
// resolv.conf names the gateway and this relays each query to the configured upstreams.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { connect, createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { inSubnet } from '../common/ipv4';

const MAX_QUERY_BYTES = 4096;
const UPSTREAM_TIMEOUT_MS = 2000;
const MAX_IN_FLIGHT = 256;
const MAX_TCP_CONNECTIONS = 64;
const MAX_TCP_PER_SOURCE = 8;
/** Queries of one connection waiting for their answer; past it the connection is not read. */
const MAX_TCP_QUEUED = 16;
const MAX_TCP_UNREAD_BYTES = 256 * 1024;
const TCP_IDLE_MS = 10_000;

/** IPv4 nameservers of the host's resolv.conf (the default upstreams): the host can reach them. */
export function hostNameservers(file = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(line)?.[1])
    .filter((address): address is string => address !== undefined);
}

/** A DNS message as TCP carries it: its length first. */
function frame(message: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

/** An answer to `query`: a whole DNS header carrying the query's id. */
const answers = (query: Buffer, answer: Buffer) =>
  answer.length >= 12 && answer.readUInt16BE(0) === query.readUInt16BE(0);

export class DnsForwarder {
  private socket?: Socket;
  private tcpServer?: Server;
  private readonly tcpClients = new Set<TcpSocket>();
  private readonly tcpPerSource = new Map<string, number>();
  private inFlight = 0;

  constructor(
    private readonly options: { listenHost: string; port?: number; subnet: string; upstreams: string[] },
    private readonly logger: Logger,
  ) {}

  async listen(): Promise<void> {
    if (this.options.upstreams.length === 0) throw new Error('no DNS upstream: set local.dns.upstreams');
    const socket = createSocket('udp4');
    socket.on('message', (query, client) => void this.relay(query, client));
    socket.on('error', (err) => this.logger.error({ err }, 'DNS forwarder error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.port ?? 53, this.options.listenHost, () => resolve());
    });
    this.socket = socket;

    const tcpServer = createServer((client) => this.relayTcp(client));
    tcpServer.maxConnections = MAX_TCP_CONNECTIONS;
    tcpServer.on('error', (err) => this.logger.error({ err }, 'DNS forwarder (TCP) error'));
    await new Promise<void>((resolve, reject) => {
      tcpServer.once('error', reject);
      tcpServer.listen(this.options.port ?? 53, this.options.listenHost, () => resolve());
    });
    this.tcpServer = tcpServer;
  }

  /**
   * DNS over TCP: each message is framed by a two-byte length. Every query from the sandbox is checked and
   * asked on its own (so only DNS-sized messages reach an upstream, and a dead upstream is skipped).
   */
  private relayTcp(client: TcpSocket): void {
    const source = client.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    if (!inSubnet(source, this.options.subnet)) return void client.destroy();
    // One sandbox may not take every connection: the others need TCP fallback too.
    const fromSource = this.tcpPerSource.get(source) ?? 0;
    if (fromSource >= MAX_TCP_PER_SOURCE) return void client.destroy();
    this.tcpPerSource.set(source, fromSource + 1);
    this.tcpClients.add(client);
    client.once('close', () => {
      this.tcpClients.delete(client);
      const left = (this.tcpPerSource.get(source) ?? 1) - 1;
      if (left > 0) this.tcpPerSource.set(source, left);
      else this.tcpPerSource.delete(source);
    });
    client.setTimeout(TCP_IDLE_MS, () => client.destroy());
    client.on('error', () => client.destroy());
    let pending = Buffer.alloc(0);
    let queued = 0;
    let answering = Promise.resolve();
    const answer = async (query: Buffer) => {
      try {
        if (client.destroyed) return; // gone: ask nobody on its behalf
        const reply = await this.firstAnswer((upstream) => this.askTcp(upstream, query));
        if (!reply) return;
        if (client.writable) client.write(frame(reply));
        // A client that asks and never reads its answers is not buffered for without bound.
        if (client.writableLength > MAX_TCP_UNREAD_BYTES) client.destroy();
      } finally {
        queued--;
        if (!client.destroyed) takeFrames();
      }
    };
    /** Takes complete frames off `pending` while the queue has room; the rest waits, unread, in the socket. */
    const takeFrames = () => {
      while (pending.length >= 2 && queued < MAX_TCP_QUEUED) {
        const length = pending.readUInt16BE(0);
        if (length < 12 || length > MAX_QUERY_BYTES) return void client.destroy();
        if (pending.length < 2 + length) break;
        const query = Buffer.from(pending.subarray(2, 2 + length)); // a copy: not the whole chunk kept alive
        pending = pending.subarray(2 + length);
        queued++;
        answering = answering.then(() => answer(query)); // answers go back in the order the queries came
      }
      // A flood of tiny queries cannot grow the queue: the connection is not read until it shrinks.
      if (queued >= MAX_TCP_QUEUED) client.pause();
      else if (client.isPaused()) client.resume();
    };
    client.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      takeFrames();
    });
  }

  private askTcp(upstream: string, query: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const socket = connect({ host: upstream, port: 53 });
      let received = Buffer.alloc(0);
      const done = (answer?: Buffer) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(answer);
      };
      const timer = setTimeout(() => done(), UPSTREAM_TIMEOUT_MS);
      socket.on('error', () => done());
      socket.on('close', () => done());
      socket.on('connect', () => socket.write(frame(query)));
      socket.on('data', (data: Buffer) => {
        received = Buffer.concat([received, data]);
        if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
        const answer = received.subarray(2, 2 + received.readUInt16BE(0));
        done(answers(query, answer) ? answer : undefined);
      });
    });
  }

  /** Only sandboxes on the bridge are served; each query tries the upstreams in order. */
  private async relay(query: Buffer, client: RemoteInfo): Promise<void> {
    if (!inSubnet(client.address, this.options.subnet) || query.length > MAX_QUERY_BYTES || query.length < 12) return;
    if (this.inFlight >= MAX_IN_FLIGHT) return; // the client retries; a flood costs us nothing
    this.inFlight++;
    try {
      const answer = await this.firstAnswer((upstream) => this.ask(upstream, query));
      if (answer) this.socket?.send(answer, client.port, client.address);
    } finally {
      this.inFlight--;
    }
  }

  /** The upstreams in their order: the first that answers wins (UDP and TCP alike). */
  private async firstAnswer(ask: (upstream: string) => Promise<Buffer | undefined>): Promise<Buffer | undefined> {
    for (const upstream of this.options.upstreams) {
      const answer = await ask(upstream);
      if (answer) return answer;
    }
    return undefined;
  }

  private ask(upstream: string, query: Buffer): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const socket = createSocket('udp4');
      const done = (answer?: Buffer) => {
        clearTimeout(timer);
        socket.close();
        resolve(answer);
      };
      const timer = setTimeout(() => done(), UPSTREAM_TIMEOUT_MS);
      socket.on('error', () => done());
      socket.on('message', (answer, from) => {
        // The answer must come from the server we asked and carry the query's id.
        if (from.address === upstream && answers(query, answer)) {
          done(answer);
        }
      });
      socket.send(query, 53, upstream, (err) => err && done());
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
    for (const client of this.tcpClients) client.destroy(); // else close() waits for their idle timeout
    await new Promise<void>((resolve) => (this.tcpServer ? this.tcpServer.close(() => resolve()) : resolve()));
  }
}
