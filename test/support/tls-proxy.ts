// Test certificates made with openssl at test time, and a TLS-terminating proxy in front of the plain dev server.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';

/** The name the proxy's certificate is for; clients set it as temporal.tls.serverName. */
export const SERVER_NAME = 'temporal.agentlab.test';

export interface TestPki {
  dir: string;
  caFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA nobody trusts, and a client certificate it signed. */
  rogueCaFile: string;
  rogueClientCert: string;
  rogueClientKey: string;
  /** A client certificate of the test CA that expires in 2 days. */
  expiringClientCert: string;
  expiringClientKey: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function newKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  chmodSync(path, 0o600);
}

function newCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  newKey(key);
  openssl([
    ...['req', '-x509', '-new', '-key', key, '-out', cert, '-days', '30', '-subj', `/CN=${name}`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  return { cert, key };
}

function newLeaf(dir: string, name: string, ca: { cert: string; key: string }, extensions: string, days = 30): void {
  const key = join(dir, `${name}.key`);
  newKey(key);
  openssl(['req', '-new', '-key', key, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n${extensions}\n`);
  openssl([
    ...['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial'],
    ...['-out', join(dir, `${name}.crt`), '-days', String(days), '-extfile', join(dir, `${name}.ext`)],
  ]);
}

/** A CA, a server certificate for SERVER_NAME and a client certificate; a second, unknown CA with its client. */
export function makeTestPki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  const ca = newCa(dir, 'ca');
  const rogue = newCa(dir, 'rogue-ca');
  newLeaf(dir, 'server', ca, `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`);
  newLeaf(dir, 'client', ca, 'extendedKeyUsage=clientAuth');
  newLeaf(dir, 'rogue-client', rogue, 'extendedKeyUsage=clientAuth');
  newLeaf(dir, 'expiring-client', ca, 'extendedKeyUsage=clientAuth', 2);
  return {
    dir,
    caFile: ca.cert,
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    rogueCaFile: rogue.cert,
    rogueClientCert: join(dir, 'rogue-client.crt'),
    rogueClientKey: join(dir, 'rogue-client.key'),
    expiringClientCert: join(dir, 'expiring-client.crt'),
    expiringClientKey: join(dir, 'expiring-client.key'),
  };
}

export interface TlsProxy {
  address: string;
  /** Handshakes the proxy refused, with Node's reason (e.g. a client certificate it does not trust). */
  refused: string[];
  close(): Promise<void>;
}

/**
 * Terminates TLS (HTTP/2 by ALPN, as gRPC needs) and pipes the bytes to the dev server's plain port.
 * `requireClientCert`: mTLS, only certificates the test CA signed.
 */
export async function startTlsProxy(pki: TestPki, target: string, requireClientCert = true): Promise<TlsProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.split(':').at(-1))];
  const refused: string[] = [];
  const sockets = new Set<TLSSocket>();
  const server: Server = createServer(
    {
      key: readFileSync(pki.serverKey),
      cert: readFileSync(pki.serverCert),
      ca: readFileSync(pki.caFile),
      requestCert: requireClientCert,
      rejectUnauthorized: requireClientCert,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      sockets.add(socket);
      const upstream = connect({ host, port });
      socket.pipe(upstream).pipe(socket);
      const end = () => {
        socket.destroy();
        upstream.destroy();
        sockets.delete(socket);
      };
      socket.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    },
  );
  server.on('tlsClientError', (err) => refused.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
