// doctor's Temporal checks: the connection (with the TLS reason when the handshake fails) and the TLS settings.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AgentlabConfig } from '../../common/config';
import { connectClient, TemporalUnavailableError } from '../../common/temporal';

export interface DoctorCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;

const FIXES = {
  unreachable: 'agentlab up, or set TEMPORAL_ADDRESS',
  tls: 'make temporal.tls (caFile, certFile and keyFile, serverName) match the server: see the detail',
  auth: 'check temporal.apiKeyFile (a key of this namespace, not expired) or the client certificate',
};

export async function temporalConnectionCheck(config: AgentlabConfig): Promise<DoctorCheck> {
  const { address } = config.temporal;
  const secured = config.temporal.tls || config.temporal.apiKeyFile ? ' over TLS' : '';
  try {
    const client = await connectClient(config);
    await client.connection.close();
    return { name: 'temporal', status: 'ok', detail: `reachable at ${address}${secured}` };
  } catch (err) {
    const reason = err instanceof TemporalUnavailableError ? err.reason : 'unreachable';
    return { name: 'temporal', status: 'fail', detail: (err as Error).message, fix: FIXES[reason] };
  }
}

/** What the TLS settings hold (the config load checked the files): subjects, the client certificate's expiry. */
export function temporalTlsCheck(config: AgentlabConfig): DoctorCheck[] {
  const { tls, apiKeyFile } = config.temporal;
  if (!tls && !apiKeyFile) {
    return [{ name: 'temporal tls', status: 'skip', detail: 'plain connection (temporal.tls and apiKeyFile unset)' }];
  }
  const parts: string[] = [];
  let status: DoctorCheck['status'] = 'ok';
  let fix: string | undefined;
  const subject = (cert: X509Certificate) => cert.subject.replace(/\n/g, ', ');
  if (tls?.caFile) parts.push(`CA ${subject(new X509Certificate(readFileSync(tls.caFile)))}`);
  else parts.push("the system's CAs");
  if (tls?.certFile) {
    const cert = new X509Certificate(readFileSync(tls.certFile));
    const until = new Date(cert.validTo);
    parts.push(`client certificate ${subject(cert)} until ${until.toISOString()}`);
    const left = until.getTime() - Date.now();
    if (left <= 0 || new Date(cert.validFrom).getTime() > Date.now()) {
      status = 'fail';
      fix = `renew ${tls.certFile}`;
    } else if (left < EXPIRY_WARNING_MS) {
      status = 'warn';
      fix = `renew ${tls.certFile} before it expires`;
    }
  }
  if (tls?.serverName) parts.push(`server name ${tls.serverName}`);
  if (apiKeyFile) parts.push(`API key from ${apiKeyFile}`);
  return [{ name: 'temporal tls', status, detail: parts.join('; '), ...(fix && { fix }) }];
}
