// The simulator's HTTP plumbing as pve-http-server does it: form, JSON and multipart bodies (a repeated form key
// becomes a list, which no parameter type accepts), uploads parked as /var/tmp/pveupload-*, and its certificate.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ParamValue } from './schema';
import type { Upload } from './storage-routes';

/** pve-http-server decode_urlencoded: `+` is a space, a key without `=` has no value, a repeated key a list. */
export function decodeUrlencoded(data: string): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  const unescape = (text: string) =>
    Buffer.from(
      text.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
  for (const pair of data.split(/[&;]/)) {
    if (pair === '') continue;
    const [rawKey, rawValue] = pair.split('=');
    const key = unescape(rawKey!);
    if (rawValue === undefined) continue; // undef in Perl: as if not sent
    const value = unescape(rawValue);
    const old = out[key];
    out[key] = old === undefined ? value : [...(Array.isArray(old) ? old : [old]), value];
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A multipart upload's fields; a file part is parked and named by the tmpfilename parameter it becomes. */
function decodeMultipart(body: Buffer, boundary: string, uploads: (Upload & { tmpfilename: string })[]) {
  const params: Record<string, ParamValue> = {};
  for (const part of body.toString('latin1').split(`--${boundary}`).slice(1, -1)) {
    const [head = '', ...rest] = part.replace(/^\r\n/, '').split('\r\n\r\n');
    const content = rest.join('\r\n\r\n').replace(/\r\n$/, '');
    const name = /name="([^"]*)"/.exec(head)?.[1];
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    if (!name) continue;
    if (filename !== undefined) {
      const tmpfilename = `/var/tmp/pveupload-${randomBytes(16).toString('hex')}`;
      uploads.push({ tmpfilename, name: filename, size: Buffer.byteLength(content, 'latin1') });
      params.tmpfilename = tmpfilename;
    } else params[name] = Buffer.from(content, 'latin1').toString('utf8');
  }
  return params;
}

/** The body's parameters; `params` undefined for a DELETE that has a body (pve-http-server answers 501). */
export async function decodeBody(
  req: IncomingMessage,
  method: string,
): Promise<{ params?: Record<string, ParamValue>; uploads: (Upload & { tmpfilename: string })[] }> {
  const body = await readBody(req);
  const uploads: (Upload & { tmpfilename: string })[] = [];
  if (method === 'DELETE' && body.length > 0) return { uploads };
  if (method !== 'POST' && method !== 'PUT') return { params: {}, uploads };
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    const parsed = (body.length ? JSON.parse(body.toString('utf8')) : {}) as Record<string, unknown>;
    const params = Object.fromEntries(
      Object.entries(parsed).map(([k, v]): [string, ParamValue] => {
        if (typeof v === 'boolean') return [k, v ? '1' : '0']; // JSON::is_bool passes a boolean check
        if (Array.isArray(v)) return [k, v.map(String)];
        return [k, String(v)];
      }),
    );
    return { params, uploads };
  }
  const boundary = /multipart\/form-data;.*boundary=("?)([^";]+)\1/.exec(type)?.[2];
  if (boundary) return { params: decodeMultipart(body, boundary, uploads), uploads };
  return { params: decodeUrlencoded(body.toString('latin1')), uploads };
}

/** A throwaway self-signed certificate for 127.0.0.1, like a fresh node's pve-ssl.pem. */
export function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pve-sim-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pve-sim']
        .concat(['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'])
        .concat(['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
