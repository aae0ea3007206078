// Payload encryption (Node only): an AES-256-GCM PayloadCodec for the client, the worker and the codec endpoint.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { AgentlabConfig } from './config';
import { readPrivateSecretFile } from './secrets';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CodecKeyError extends Error {
  override name = 'CodecKeyError';
}

/** The key file holds 32 random bytes, base64 or hex. It must be private. */
export function loadCodecKey(file: string): Buffer {
  const text = readPrivateSecretFile(file, 'payload codec key file', (message) => new CodecKeyError(message));
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) {
    throw new CodecKeyError(`payload codec key file ${file} must hold 32 bytes (base64 or hex), found ${key.length}`);
  }
  return key;
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : '');

const keyIdOf = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 16);

export class AesGcmCodec implements PayloadCodec {
  /** Names the key in each payload, so a rotated key fails with a clear error rather than garbage. */
  readonly keyId: string;
  /** Every key this codec decrypts with, by id: the current one and those it replaced. */
  private readonly keyring: Map<string, Buffer>;

  /** `previousKeys`: keys rotated out, still read (histories written before the rotation), never written. */
  constructor(
    private readonly key: Buffer,
    previousKeys: Buffer[] = [],
  ) {
    this.keyId = keyIdOf(key);
    this.keyring = new Map([...previousKeys.map((k) => [keyIdOf(k), k] as const), [this.keyId, key]]);
  }

  /** The codec endpoint's bearer token: whoever holds the key can derive it, nobody else can. */
  endpointToken(): string {
    return createHmac('sha256', this.key).update('agentlab codec endpoint').digest('hex');
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID]: utf8(this.keyId) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload; // from before encryption
      const keyId = text(payload.metadata?.[KEY_ID]);
      const key = this.keyring.get(keyId);
      if (!key) {
        const held = [...this.keyring.keys()].map((id) => (id === this.keyId ? `${id} (current)` : id)).join(', ');
        throw new CodecKeyError(
          `payload was encrypted with key ${keyId}, this host has key(s) ${held}; ` +
            'a rotated-out key belongs in temporal.codec.previousKeyFiles',
        );
      }
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(), // throws if the payload was tampered with
      ]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/** The data converter every client and worker uses: encoded failures always, encryption when keyed. */
export function dataConverter(codec: AesGcmCodec | undefined): DataConverter {
  return {
    failureConverterPath: require.resolve('./failure-converter'),
    payloadCodecs: codec ? [codec] : [],
  };
}

/** The configured codec, or undefined when payloads are not encrypted (see docs/architecture.md). */
export function codecFor(config: AgentlabConfig): AesGcmCodec | undefined {
  const codec = config.temporal.codec;
  return codec ? new AesGcmCodec(loadCodecKey(codec.keyFile), codec.previousKeyFiles.map(loadCodecKey)) : undefined;
}

/**
 * The URL the Web UI calls (`--ui-codec-endpoint`), when payloads are encrypted: the token in the path,
 * as the UI sends no credentials.
 */
export function codecEndpointUrl(config: AgentlabConfig): string | undefined {
  const codec = codecFor(config);
  return codec && `http://${config.temporal.codec!.endpointListen}/${codec.endpointToken()}`;
}
