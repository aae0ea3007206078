// TLS, mTLS and API-key settings for Temporal: validated at config load, turned into the SDK's connection options.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { modeText } from './secrets';

const absolutePath = z.string().startsWith('/', 'expected an absolute path');

export interface TemporalTls {
  /** PEM CA that signed the server's certificate; absent: the system's roots (Temporal Cloud). */
  caFile?: string;
  /** PEM client certificate and its private key, for mTLS. */
  certFile?: string;
  keyFile?: string;
  /** The name the server's certificate is checked against, when it is not the address's host. */
  serverName?: string;
}

type Refinement = z.core.$RefinementCtx;

/** The file's bytes, or an issue at `field` saying why it cannot be read. */
function readable(file: string, field: string, ctx: Refinement): Buffer | undefined {
  try {
    accessSync(file, fsConstants.R_OK);
    if (!statSync(file).isFile()) throw new Error('not a regular file');
    return readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    ctx.addIssue({ code: 'custom', path: field ? [field] : [], message: `${file} cannot be read: ${reason}` });
    return undefined;
  }
}

/** A secret only its owner may read: group or others having any bit is refused, with the fix. */
function privateFile(file: string, field: string, ctx: Refinement): Buffer | undefined {
  const bytes = readable(file, field, ctx);
  const mode = bytes && statSync(file).mode;
  if (mode !== undefined && (mode & 0o077) !== 0) {
    const message = `${file} has mode ${modeText(mode)} (group or others may read it); fix: chmod 600 ${file}`;
    ctx.addIssue({ code: 'custom', path: field ? [field] : [], message });
    return undefined;
  }
  return bytes;
}

function certificate(bytes: Buffer, file: string, field: string, ctx: Refinement): X509Certificate | undefined {
  try {
    return new X509Certificate(bytes);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      path: [field],
      message: `${file} is not a PEM certificate: ${(err as Error).message}`,
    });
    return undefined;
  }
}

function privateKey(bytes: Buffer, file: string, ctx: Refinement): KeyObject | undefined {
  try {
    return createPrivateKey(bytes);
  } catch (err) {
    const message = `${file} is not a PEM private key (encrypted keys are not supported): ${(err as Error).message}`;
    ctx.addIssue({ code: 'custom', path: ['keyFile'], message });
    return undefined;
  }
}

export const temporalTlsSchema = z
  .object({
    caFile: absolutePath.optional(),
    certFile: absolutePath.optional(),
    keyFile: absolutePath.optional(),
    serverName: z
      .string()
      .regex(/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'expected a DNS name')
      .optional(),
  })
  .strict()
  .superRefine((tls, ctx) => {
    if (tls.caFile) {
      const bytes = readable(tls.caFile, 'caFile', ctx);
      if (bytes) certificate(bytes, tls.caFile, 'caFile', ctx);
    }
    if (!tls.certFile !== !tls.keyFile) {
      const missing = tls.certFile ? 'keyFile' : 'certFile';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: 'a client certificate needs both certFile and keyFile',
      });
      return;
    }
    if (!tls.certFile || !tls.keyFile) return;
    const certBytes = readable(tls.certFile, 'certFile', ctx);
    const keyBytes = privateFile(tls.keyFile, 'keyFile', ctx);
    const cert = certBytes && certificate(certBytes, tls.certFile, 'certFile', ctx);
    const key = keyBytes && privateKey(keyBytes, tls.keyFile, ctx);
    if (cert && key && !cert.checkPrivateKey(key)) {
      const message = `${tls.keyFile} is not the private key of ${tls.certFile} (${cert.subject.replace(/\n/g, ', ')})`;
      ctx.addIssue({ code: 'custom', path: ['keyFile'], message });
    }
  });

/** Temporal Cloud's API key: a private file holding one line, sent as `authorization: Bearer <key>`. */
export const apiKeyFileSchema = absolutePath.superRefine((file, ctx) => {
  const bytes = privateFile(file, '', ctx);
  const key = bytes?.toString('utf8').trim();
  if (bytes && !key) ctx.addIssue({ code: 'custom', message: `${file} is empty` });
  else if (key && /\s/.test(key)) ctx.addIssue({ code: 'custom', message: `${file} must hold one line, the key` });
});

export interface TemporalConnectionSettings {
  address: string;
  tls?: TemporalTls;
  apiKeyFile?: string;
}

/** What both the client's Connection and the worker's NativeConnection take (their TLS options agree). */
export interface SdkConnectionOptions {
  address: string;
  tls?: {
    serverRootCACertificate?: Buffer;
    clientCertPair?: { crt: Buffer; key: Buffer };
    serverNameOverride?: string;
  };
  apiKey?: string;
}

/** Reads the files the config validated; an API key without `tls` still connects over TLS (the SDK's rule). */
export function sdkConnectionOptions(settings: TemporalConnectionSettings): SdkConnectionOptions {
  const { tls, apiKeyFile } = settings;
  return {
    address: settings.address,
    ...(tls && {
      tls: {
        ...(tls.caFile && { serverRootCACertificate: readFileSync(tls.caFile) }),
        ...(tls.certFile &&
          tls.keyFile && { clientCertPair: { crt: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } }),
        ...(tls.serverName && { serverNameOverride: tls.serverName }),
      },
    }),
    ...(apiKeyFile && { apiKey: readFileSync(apiKeyFile, 'utf8').trim() }),
  };
}
