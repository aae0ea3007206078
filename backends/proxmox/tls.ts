// The per-client undici dispatcher: trusts the given CA or pins the server certificate's SHA-256 fingerprint,
// and says which certificate it met when it refuses one.
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';

export interface TlsTrust {
  /** PEM of the CA that signed pveproxy's certificate (e.g. /etc/pve/pve-root-ca.pem). */
  ca?: string;
  /** Where `ca` came from, for messages. */
  caSource?: string;
  /** `AA:BB:…` as shown in the GUI or in GET /nodes `ssl_fingerprint`. */
  fingerprint?: string;
}

export const normalizeFingerprint = (fp: string): string => fp.replace(/[^0-9a-f]/gi, '').toUpperCase();
const formatFingerprint = (fp: string): string => normalizeFingerprint(fp).replace(/(..)(?!$)/g, '$1:');

/**
 * The server's certificate is not the one this client trusts. Retrying never helps (the certificate does
 * not change by itself), so the client reports it as a permanent error, with both sides named.
 */
export class TlsTrustError extends Error {
  override name = 'TlsTrustError';
}

/**
 * One Agent per client, never NODE_TLS_REJECT_UNAUTHORIZED: the trust decision stays with this client.
 * Node verifies as usual, but the socket is kept long enough to read the certificate it refused, so the error
 * names its fingerprint. Pinning skips chain validation (PVE's default certificate is signed by the cluster CA)
 * and checks the leaf's fingerprint on every connection; session caching is off so every connection is checked.
 */
export function createDispatcher(trust: TlsTrust): Agent {
  const base = buildConnector({
    rejectUnauthorized: false,
    maxCachedSessions: 0,
    ...(trust.ca && !trust.fingerprint ? { ca: trust.ca } : {}),
  });
  const connect: buildConnector.connector = (options, callback) =>
    base(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      if (options.protocol === 'https:') {
        const problem = trustProblem(socket as TLSSocket, options.hostname, trust);
        if (problem) {
          socket.destroy();
          return callback(new TlsTrustError(problem), null);
        }
      }
      callback(null, socket);
    });
  return new Agent({ connect });
}

function trustProblem(socket: TLSSocket, host: string, trust: TlsTrust): string | undefined {
  const seen = formatFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
  if (trust.fingerprint) {
    const pinned = formatFingerprint(trust.fingerprint);
    if (seen === pinned) return undefined;
    return `TLS fingerprint mismatch for ${host}: expected ${pinned} (proxmox.fingerprint), got ${seen}`;
  }
  if (socket.authorized) return undefined;
  const by = trust.ca ? `the CA in ${trust.caSource ?? 'proxmox.caFile'}` : "this host's trusted CAs";
  return (
    `TLS certificate of ${host} is not trusted by ${by} (${String(socket.authorizationError)}); ` +
    `its fingerprint is ${seen}: set proxmox.caFile to the CA that signed it, or pin it with proxmox.fingerprint`
  );
}
