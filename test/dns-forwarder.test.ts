// The gateway's DNS forwarder over TCP, on loopback: framed queries answered in order by the upstream,
// a frame that is not DNS-sized closes the connection, and one source gets at most 8 connections.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { DnsForwarder } from '../worker/dns-forwarder';
import { eventually, freePort } from './support/stack';

const UPSTREAM = '127.0.0.77'; // a loopback address of its own: the fixture binds port 53 there
const DNS_SERVER = join(__dirname, 'fixtures', 'dns-server.js');

function query(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const message = Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels,
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  return Buffer.concat([Buffer.from([message.length >> 8, message.length & 0xff]), message]);
}

/** The framed answers read from a socket until `count` have come. */
function answers(socket: Socket, count: number): Promise<{ id: number; address: string }[]> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const parsed: { id: number; address: string }[] = [];
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed after ${parsed.length} of ${count} answers`)));
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      while (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        const message = received.subarray(2, 2 + received.readUInt16BE(0));
        received = received.subarray(2 + message.length);
        parsed.push({ id: message.readUInt16BE(0), address: [...message.subarray(message.length - 4)].join('.') });
        if (parsed.length === count) resolve(parsed);
      }
    });
  });
}

const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));

describe('DNS forwarder over TCP', () => {
  let upstream: ChildProcess;
  let forwarder: DnsForwarder;
  let port = 0;
  const open = () =>
    new Promise<Socket>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    });

  beforeAll(async () => {
    upstream = spawn(process.execPath, [DNS_SERVER, UPSTREAM, 'a.example.test=192.0.2.1', 'b.example.test=192.0.2.2']);
    port = await freePort();
    forwarder = new DnsForwarder(
      { listenHost: '127.0.0.1', port, subnet: '127.0.0.0/8', upstreams: [UPSTREAM] },
      pino({ level: 'silent' }),
    );
    await forwarder.listen();
    await eventually(
      'the upstream to listen',
      () =>
        new Promise<boolean>((resolve) => {
          const probe = connect({ host: UPSTREAM, port: 53 }, () => resolve(true));
          probe.on('error', () => resolve(false));
          probe.on('connect', () => probe.destroy());
        }),
      10_000,
    );
  });
  afterAll(async () => {
    await forwarder.close();
    upstream.kill();
  });

  test('queries written together are answered in order, each by the upstream', async () => {
    const socket = await open();
    const replies = answers(socket, 3);
    socket.write(Buffer.concat([query(7, 'a.example.test'), query(8, 'b.example.test'), query(9, 'a.example.test')]));
    expect(await replies).toEqual([
      { id: 7, address: '192.0.2.1' },
      { id: 8, address: '192.0.2.2' },
      { id: 9, address: '192.0.2.1' },
    ]);
    socket.destroy();
  });

  test('a frame too short to be DNS closes the connection', async () => {
    const socket = await open();
    const gone = closed(socket);
    socket.write(Buffer.from([0, 3, 1, 2, 3]));
    await gone;
  });

  test('one source gets at most 8 connections; a closed one frees its place', async () => {
    const sockets = await Promise.all(Array.from({ length: 8 }, open));
    const ninth = await open();
    // Closed at once, not after the 10 s idle timeout every connection has.
    const within2s = new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 2000));
    expect(await Promise.race([closed(ninth).then(() => 'closed'), within2s])).toBe('closed');
    sockets[0]!.destroy();
    await eventually('a place to free up', async () => {
      const socket = await open();
      const replies = answers(socket, 1);
      socket.write(query(3, 'b.example.test'));
      const ok = await Promise.race([replies.then(() => true), closed(socket).then(() => false)]);
      socket.destroy();
      return ok;
    });
    for (const socket of sockets) socket.destroy();
  });
});
