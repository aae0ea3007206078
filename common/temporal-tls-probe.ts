// Why a TLS connection to Temporal fails. gRPC only says "Failed to connect before the deadline"; a handshake of
// our own with the same settings, through node:tls as grpc-js does it, finds the reason an operator can act on.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { SdkConnectionOptions, TemporalTls } from './temporal-tls';

// The HTTP/2 client preface and an empty SETTINGS frame: a server that accepted our certificate answers it.
const H2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);
const UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);
const NOT_REACHED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT']);

const subjectOf = (file: string) => {
  try {
    return new X509Certificate(readFileSync(file)).subject.replace(/\n/g, ', ');
  } catch {
    return 'unreadable';
  }
};

/** Told apart by where the handshake stopped: our check of the server, or the server's alert about our certificate. */
function reasonFor(err: NodeJS.ErrnoException, afterHandshake: boolean, tls: TemporalTls): string | undefined {
  const code = err.code ?? '';
  if (NOT_REACHED.has(code)) return undefined;
  const trust = tls.caFile ? `a CA in temporal.tls.caFile (${tls.caFile})` : 'a CA this system trusts';
  if (UNKNOWN_CA.has(code)) return `unknown CA: the server's certificate is not signed by ${trust} (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `name mismatch: ${err.message}; set temporal.tls.serverName to a name the server's certificate is for`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return `the server's certificate is not valid now (${code})`;
  if (/wrong version number|packet length too long|unknown protocol/i.test(err.message)) {
    return `the server does not speak TLS (${err.message.trim()}); remove temporal.tls and temporal.apiKeyFile, or check the address`;
  }
  if (afterHandshake || /alert/i.test(err.message)) {
    const alert = /alert ([a-z ]+)/i.exec(err.message)?.[1]?.trim() ?? (err.message || 'connection closed');
    if (!tls.certFile)
      return `the server requires a client certificate (${alert}); set temporal.tls.certFile and keyFile`;
    return `bad client certificate: the server refused temporal.tls.certFile (${tls.certFile}, ${subjectOf(tls.certFile)}): ${alert}`;
  }
  return `TLS handshake failed: ${err.message}`;
}

/** The reason a TLS connection with these settings fails, or undefined when TLS is fine (or the host is not reached). */
export function diagnoseTls(
  options: SdkConnectionOptions,
  tls: TemporalTls = {},
  timeoutMs = 3000,
): Promise<string | undefined> {
  const host = options.address.slice(0, options.address.lastIndexOf(':'));
  const servername = options.tls?.serverNameOverride ?? host;
  const settings: ConnectionOptions = {
    host,
    port: Number(options.address.split(':').at(-1)),
    ALPNProtocols: ['h2'],
    ...(isIP(servername) ? {} : { servername }),
    ...(options.tls?.serverRootCACertificate && { ca: options.tls.serverRootCACertificate }),
    ...(options.tls?.clientCertPair && { cert: options.tls.clientCertPair.crt, key: options.tls.clientCertPair.key }),
    // Node checks the name against `servername` when set, else against the host; do it against the override.
    checkServerIdentity: (_host, cert) => checkServerIdentity(servername, cert),
  };
  return new Promise((resolve) => {
    let handshaken = false;
    const socket: TLSSocket = connect(settings, () => {
      handshaken = true;
      if (socket.alpnProtocol !== 'h2') return done('the server did not agree to HTTP/2 (ALPN h2), which gRPC needs');
      socket.write(H2_PREFACE);
    });
    const timer = setTimeout(() => done(undefined), timeoutMs);
    function done(reason: string | undefined): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    }
    socket.once('data', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(reasonFor(err, handshaken, tls)));
    socket.once('close', () => done(handshaken ? reasonFor(new Error('connection closed'), true, tls) : undefined));
  });
}
