// Secrets bundles encrypted at rest with age (Node only, never from workflows/): paths, schema, checks, I/O.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import execa from 'execa';
import { z } from 'zod';
import { describeIssues } from './schemas';

export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
export const BUNDLE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** `kind` lets the CLI choose the exit code without parsing messages. */
export class SecretsError extends Error {
  override name = 'SecretsError';
  constructor(
    readonly kind: 'not_found' | 'permission' | 'invalid' | 'exists' | 'failed',
    message: string,
  ) {
    super(message);
  }
}

export interface SecretsPaths {
  keyFile: string;
  dir: string;
}

/** Root gets the system paths the worker reads; anyone else gets per-user XDG paths. */
export function secretsPaths(env: NodeJS.ProcessEnv = process.env): SecretsPaths {
  const root = process.getuid?.() === 0;
  const base = join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'agentlab');
  return {
    keyFile: env.AGENTLAB_SECRETS_KEY_FILE || (root ? '/etc/agentlab/keys/age.key' : join(base, 'keys', 'age.key')),
    dir: env.AGENTLAB_SECRETS_DIR || (root ? '/etc/agentlab/secrets' : join(base, 'secrets')),
  };
}

const gitSchema = z
  .object({
    username: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    sshPrivateKey: z
      .string()
      .regex(/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'expected a PEM/OpenSSH private key')
      .optional(),
    knownHosts: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((git, ctx) => {
    if ((git.token === undefined) === (git.sshPrivateKey === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'exactly one of token and sshPrivateKey is required' });
    }
    if (git.sshPrivateKey !== undefined && git.knownHosts === undefined) {
      // Without pinned host keys the guest would have to trust whatever host answers (MITM).
      ctx.addIssue({ code: 'custom', path: ['knownHosts'], message: 'required with sshPrivateKey' });
    }
  });

const jsonObjectString = z.string().superRefine((text, ctx) => {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a JSON object' });
  }
});

export const bundleSchema = z
  .object({
    version: z.literal(1),
    env: z.record(z.string().regex(ENV_NAME_PATTERN, 'expected a name matching [A-Z_][A-Z0-9_]*'), z.string()),
    git: gitSchema.optional(),
    agent: z.object({ claudeSettingsJson: jsonObjectString.optional() }).strict().optional(),
  })
  .strict();
export type SecretsBundle = z.output<typeof bundleSchema>;

export const emptyBundle = (): SecretsBundle => ({ version: 1, env: {} });

/** A display form that never shows the value: short values are fully masked, others keep 2 chars. */
export function redact(value: string): string {
  if (value.length < 6) return '******';
  return `${value.slice(0, 2)}…(${value.length} chars)`;
}

export const modeText = (mode: number) => (mode & 0o777).toString(8).padStart(4, '0');

/** Refuses a key or bundle file that anyone but its owner may read or write. */
export function checkPrivateFile(path: string, what: string): void {
  const st = statSync(path);
  if (!st.isFile()) throw new SecretsError('invalid', `${what} ${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretsError(
      'permission',
      `${what} ${path} has mode ${modeText(st.mode)} (accessible by group or others); fix: chmod 600 ${path}`,
    );
  }
}

/** How to make a file of 32 random bytes that only its owner reads (a codec key, an operator token). */
export const randomSecretFileFix = (file: string) =>
  `create it with: head -c 32 /dev/urandom | base64 > ${file} && chmod 600 ${file}`;

/**
 * The trimmed text of a private secret file; a missing one is `missing`'s error, naming the file and how to
 * make it. A file others may read fails as in checkPrivateFile.
 */
export function readPrivateSecretFile(file: string, what: string, missing: (message: string) => Error): string {
  if (!existsSync(file)) throw missing(`${what} ${file} does not exist; ${randomSecretFileFix(file)}`);
  checkPrivateFile(file, what);
  return readFileSync(file, 'utf8').trim();
}

/** A world-writable directory lets anyone swap the key or a bundle. */
export function checkDir(dir: string, what: string): void {
  if (!existsSync(dir)) return;
  const st = statSync(dir);
  if ((st.mode & 0o002) !== 0) {
    throw new SecretsError(
      'permission',
      `${what} ${dir} has mode ${modeText(st.mode)} (world-writable); fix: chmod 700 ${dir}`,
    );
  }
}

/** The key file must exist and be private before anything is encrypted or decrypted with it. */
export function checkKey(paths: SecretsPaths): void {
  checkDir(dirname(paths.keyFile), 'key directory');
  if (!existsSync(paths.keyFile)) {
    throw new SecretsError('not_found', `key file ${paths.keyFile} does not exist; run: agentlab secrets init`);
  }
  checkPrivateFile(paths.keyFile, 'key file');
}

export const bundleFile = (paths: SecretsPaths, name: string) => join(paths.dir, `${name}.age`);

export function listBundles(paths: SecretsPaths): string[] {
  if (!existsSync(paths.dir)) return [];
  checkDir(paths.dir, 'secrets directory');
  return readdirSync(paths.dir)
    .filter((f) => f.endsWith('.age') && !f.startsWith('.'))
    .map((f) => f.slice(0, -'.age'.length))
    .sort();
}

/** age's own message, never its stdout (which may be plaintext) nor our stdin. */
async function runAge(args: string[], input: Buffer): Promise<Buffer> {
  const result = await execa('age', args, { input, encoding: null, stripFinalNewline: false, reject: false });
  if (result.exitCode !== 0) {
    const stderr = Buffer.from(result.stderr ?? '')
      .toString('utf8')
      .split('\n')
      .filter((l) => l && !l.includes('report unexpected'))
      .join('; ')
      .replace(/"(?:[^"\\]|\\.)*"/g, '"…"'); // age quotes the input it could not parse: maybe plaintext
    throw new SecretsError('failed', `age ${args[0]} failed: ${stderr || `exit code ${result.exitCode}`}`);
  }
  return Buffer.from(result.stdout);
}

/** Decrypts and validates; errors name the bundle and the field. */
export async function loadBundle(paths: SecretsPaths, name: string): Promise<SecretsBundle> {
  checkKey(paths);
  checkDir(paths.dir, 'secrets directory');
  const file = bundleFile(paths, name);
  if (!existsSync(file)) throw new SecretsError('not_found', `bundle "${name}" does not exist (${file})`);
  checkPrivateFile(file, `bundle "${name}"`);
  let plaintext: Buffer;
  try {
    plaintext = await runAge(['--decrypt', '--identity', paths.keyFile], readFileSync(file));
  } catch (err) {
    throw new SecretsError('invalid', `bundle "${name}" (${file}) cannot be decrypted: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw new SecretsError('invalid', `bundle "${name}" (${file}) is not a JSON document once decrypted`);
  } finally {
    plaintext.fill(0);
  }
  const parsed = bundleSchema.safeParse(raw);
  if (!parsed.success) throw new SecretsError('invalid', `bundle "${name}" (${file}): ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Validates, encrypts through a pipe and replaces the file atomically (temp + rename), mode 0600. */
export async function saveBundle(paths: SecretsPaths, name: string, bundle: SecretsBundle): Promise<string> {
  const parsed = bundleSchema.safeParse(bundle);
  if (!parsed.success) throw new SecretsError('invalid', `bundle "${name}": ${describeIssues(parsed.error)}`);
  checkKey(paths);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  checkDir(paths.dir, 'secrets directory');
  const plaintext = Buffer.from(JSON.stringify(parsed.data));
  let ciphertext: Buffer;
  try {
    ciphertext = await runAge(['--encrypt', '--identity', paths.keyFile], plaintext);
  } finally {
    plaintext.fill(0);
  }
  const file = bundleFile(paths, name);
  writePrivateFile(file, ciphertext);
  return file;
}

function tempPath(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function writePrivateFile(file: string, data: Buffer): void {
  const tmp = tempPath(file);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}

/** Creates the age identity (0600, via age-keygen) unless one exists; `force` replaces it atomically. */
export async function initKey(paths: SecretsPaths, force: boolean): Promise<{ publicKey: string; replaced: boolean }> {
  const keyDir = dirname(paths.keyFile);
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  checkDir(keyDir, 'key directory');
  const exists = existsSync(paths.keyFile);
  if (exists && !force) {
    throw new SecretsError(
      'exists',
      `key file ${paths.keyFile} already exists; --force replaces it (bundles encrypted with it become unreadable)`,
    );
  }
  const tmp = tempPath(paths.keyFile);
  const generated = await execa('age-keygen', ['-o', tmp], { reject: false });
  if (generated.exitCode !== 0) throw new SecretsError('failed', `age-keygen failed: ${generated.stderr}`);
  try {
    checkPrivateFile(tmp, 'new key file');
    // link() fails if the key appeared meanwhile, so a concurrent init never loses a key silently.
    if (force) renameSync(tmp, paths.keyFile);
    else linkSync(tmp, paths.keyFile);
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
  const pub = await execa('age-keygen', ['-y', paths.keyFile], { reject: false });
  if (pub.exitCode !== 0) throw new SecretsError('failed', `age-keygen -y failed: ${pub.stderr}`);
  return { publicKey: pub.stdout.trim(), replaced: exists };
}
