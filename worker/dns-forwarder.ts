// DNS for isolated sandboxes: a UDP forwarder on the bridge's gateway. Sandboxes may not reach a LAN
// resolver (private ranges are dropped) nor the host's loopback stub (127.0.0.53 is their own loopback),
// so their resolv.conf names the gateway and this relays each query to the configured upstreams.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { inSubnet } from '../common/ipv4';

const MAX_QUERY_BYTES = 4096;
const UPSTREAM_TIMEOUT_MS = 2000;
const MAX_IN_FLIGHT = 256;

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

export class DnsForwarder {
  private socket?: Socket;
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
  }

  /** Only sandboxes on the bridge are served; each query tries the upstreams in order. */
  private async relay(query: Buffer, client: RemoteInfo): Promise<void> {
    if (!inSubnet(client.address, this.options.subnet) || query.length > MAX_QUERY_BYTES || query.length < 12) return;
    if (this.inFlight >= MAX_IN_FLIGHT) return; // the client retries; a flood costs us nothing
    this.inFlight++;
    try {
      for (const upstream of this.options.upstreams) {
        const answer = await this.ask(upstream, query);
        if (answer) {
          this.socket?.send(answer, client.port, client.address);
          return;
        }
      }
    } finally {
      this.inFlight--;
    }
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
        if (from.address === upstream && answer.length >= 12 && answer.readUInt16BE(0) === query.readUInt16BE(0)) {
          done(answer);
        }
      });
      socket.send(query, 53, upstream, (err) => err && done());
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }
}
