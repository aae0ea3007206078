// The per-client undici dispatcher: trusts the given CA or pins the server certificate's SHA-256 fingerprint.
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';

export interface TlsTrust {
  /** PEM of the CA that signed pveproxy's certificate (e.g. /etc/pve/pve-root-ca.pem). */
  ca?: string;
  /** `AA:BB:…` as shown in the GUI or in GET /nodes `ssl_fingerprint`. */
  fingerprint?: string;
}

export const normalizeFingerprint = (fp: string): string => fp.replace(/[^0-9a-f]/gi, '').toUpperCase();

/**
 * One Agent per client, never NODE_TLS_REJECT_UNAUTHORIZED: the trust decision stays with this client.
 * Pinning skips chain validation (PVE's default certificate is self-signed by the cluster CA) and checks
 * the leaf's fingerprint on every new connection; session caching is off so every connection is checked.
 */
export function createDispatcher(trust: TlsTrust): Agent {
  if (trust.fingerprint) {
    const pinned = normalizeFingerprint(trust.fingerprint);
    const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
    const connect: buildConnector.connector = (options, callback) =>
      base(options, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null);
        if (options.protocol === 'https:') {
          const seen = normalizeFingerprint((socket as TLSSocket).getPeerCertificate().fingerprint256 ?? '');
          if (seen !== pinned) {
            socket.destroy();
            return callback(new Error(`TLS fingerprint mismatch: expected ${trust.fingerprint}, got ${seen}`), null);
          }
        }
        callback(null, socket);
      });
    return new Agent({ connect });
  }
  return new Agent(trust.ca ? { connect: { ca: trust.ca } } : {});
}
