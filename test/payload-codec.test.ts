// Payload encryption: the task, the repo URL, results and failure messages are ciphertext in Temporal;
// the CLI (which has the key) still shows them, and the codec endpoint decodes them for the Web UI.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import YAML from 'yaml';
import type { Payload } from '@temporalio/common';
import { AesGcmCodec, CodecKeyError, dataConverter, ENCRYPTED_ENCODING, loadCodecKey } from '../common/codec';
import { jobListSchema } from '../cli/json-schemas';
import { createExampleRepo } from '../common/example-repo';
import { historyText, showHistory } from './support/histories';
import { freePort, SCRIPTED_AGENT, TestStack, temporalAddress } from './support/stack';

const json = (value: unknown): Payload => ({
  metadata: { encoding: new TextEncoder().encode('json/plain') },
  data: new TextEncoder().encode(JSON.stringify(value)),
});

describe('AES-GCM payload codec', () => {
  const codec = new AesGcmCodec(randomBytes(32));

  test('round trip; the ciphertext holds nothing of the plaintext', async () => {
    const original = json({ task: 'refactor the billing module' });
    const [encoded] = await codec.encode([original]);
    expect(Buffer.from(encoded!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('billing');
    const [decoded] = await codec.decode([encoded!]);
    expect(Buffer.from(decoded!.data!).toString()).toBe(JSON.stringify({ task: 'refactor the billing module' }));
    // Unencrypted payloads (histories from before encryption was on) pass through.
    expect(await codec.decode([original])).toEqual([original]);
  });

  test('a tampered payload or another key is an error, never garbage', async () => {
    const [encoded] = await codec.encode([json('x')]);
    const tampered = Buffer.from(encoded!.data!);
    tampered.writeUInt8(tampered.readUInt8(20) ^ 1, 20);
    await expect(codec.decode([{ ...encoded!, data: tampered }])).rejects.toThrow();
    await expect(new AesGcmCodec(randomBytes(32)).decode([encoded!])).rejects.toThrow(CodecKeyError);
  });

  test('after a rotation the previous key still decrypts, and only the current one encrypts', async () => {
    const oldKey = randomBytes(32);
    const written = await new AesGcmCodec(oldKey).encode([json({ task: 'before the rotation' })]);
    const rotated = new AesGcmCodec(randomBytes(32), [oldKey]);
    const [read] = await rotated.decode(written);
    expect(Buffer.from(read!.data!).toString('utf8')).toBe(JSON.stringify({ task: 'before the rotation' }));
    const [fresh] = await rotated.encode([json('after')]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe(rotated.keyId);
    await expect(new AesGcmCodec(oldKey).decode([fresh!])).rejects.toThrow(CodecKeyError);
    // Without the previous key the error says where it belongs.
    await expect(new AesGcmCodec(randomBytes(32)).decode(written)).rejects.toThrow(/temporal\.codec\.previousKeyFiles/);
  });

  test('the key file must exist, be private and hold 32 bytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codec-key-'));
    const file = join(dir, 'key');
    expect(() => loadCodecKey(file)).toThrow(/does not exist; create it with/);
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o644 });
    expect(() => loadCodecKey(file)).toThrow(/chmod 600/);
    chmodSync(file, 0o600);
    expect(loadCodecKey(file)).toHaveLength(32);
    writeFileSync(file, randomBytes(16).toString('base64'));
    expect(() => loadCodecKey(file)).toThrow(/must hold 32 bytes/);
  });
});

describe('a stack with payload encryption', () => {
  let stack: TestStack;
  let repo: string;
  let codecPort = 0;
  let keyFile = '';
  const task = `TASK-${randomBytes(8).toString('hex')} add a changelog entry`;

  beforeAll(async () => {
    codecPort = await freePort();
    keyFile = join(mkdtempSync(join(tmpdir(), 'agentlab-codec-')), 'codec.key');
    writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    stack = await new TestStack({
      temporal: { codec: { keyFile, endpointListen: `127.0.0.1:${codecPort}` } },
      profiles: [{ name: 'missing-bundle', backend: 'local', secretsBundle: 'bundle-that-is-not-there' }],
    }).init();
    await stack.startWorker();
    repo = await createExampleRepo(stack.home);
  });
  afterAll(() => stack.close());

  test('task, repo and the result message are ciphertext in history; the CLI shows repo and result in clear', async () => {
    const run = await stack.cli([
      ...['job', 'run', '--id', 'job-codec', '--repo', repo, '--task', task, '--json'],
      ...['--agent-command', `SCRIPTED_AGENT_EXIT=3 ${SCRIPTED_AGENT}`],
    ]);
    expect(run.code).toBe(1);
    const raw = await showHistory('job-codec');
    const text = historyText(raw);
    expect(raw).toContain(Buffer.from(ENCRYPTED_ENCODING).toString('base64'));
    for (const secret of [task, repo, 'agent exited with code 3']) {
      expect({ secret, found: text.includes(secret) }).toEqual({ secret, found: false });
    }
    const shown = await stack.cli(['job', 'show', 'job-codec', '--json']);
    expect(shown.stdout).toContain(repo);
    expect(shown.stdout).toContain('agent exited with code 3');
    // A client without the key cannot read it.
    const blind = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    await expect(blind.workflow.getHandle('job-codec').result()).rejects.toThrow();
    await blind.connection.close();
  });

  test('a host without the key still lists every job: the sealed memo is named, never a failed listing', async () => {
    const keyless = await new TestStack().init();
    try {
      const listed = await keyless.cli(['job', 'list', '--json', '--limit', '1000']);
      expect(listed.code).toBe(0);
      const { jobs } = jobListSchema.parse(JSON.parse(listed.stdout));
      const sealed = jobs.find((job) => job.jobId === 'job-codec');
      expect(sealed).toMatchObject({ profile: 'local', jobStatus: 'FAILED', executionStatus: 'COMPLETED' });
      expect(sealed?.memoUnreadable).toEqual(expect.stringContaining(ENCRYPTED_ENCODING));
      expect(sealed?.task).toBeUndefined();
      // `status` lists recent failures from the same listing.
      const status = await keyless.cli(['status', '--json']);
      expect(JSON.parse(status.stdout).recentFailures).toEqual(expect.any(Array));
    } finally {
      await keyless.close();
    }
    // The keyed host reads what the keyless one could not.
    const { jobs } = jobListSchema.parse(
      JSON.parse((await stack.cli(['job', 'list', '--json', '--limit', '1000'])).stdout),
    );
    expect(jobs.find((job) => job.jobId === 'job-codec')).toMatchObject({ task, repo });
  });

  test('a CLI rotated to a new key reads older jobs through previousKeyFiles, and says so without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentlab-rotated-'));
    const newKey = join(dir, 'new.key');
    writeFileSync(newKey, randomBytes(32).toString('base64'), { mode: 0o600 });
    const configWith = (codec: Record<string, unknown>) => {
      const config = YAML.parse(readFileSync(stack.configPath, 'utf8')) as { temporal: Record<string, unknown> };
      const path = join(dir, `config-${Object.keys(codec).length}.yaml`);
      writeFileSync(path, YAML.stringify({ ...config, temporal: { ...config.temporal, codec } }));
      return { AGENTLAB_CONFIG: path };
    };
    const rotated = configWith({ keyFile: newKey, previousKeyFiles: [keyFile], endpointListen: '127.0.0.1:1' });
    const shown = await stack.cli(['job', 'show', 'job-codec', '--json'], { env: rotated });
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ jobId: 'job-codec', repo });

    const newKeyOnly = configWith({ keyFile: newKey });
    const blind = await stack.cli(['job', 'show', 'job-codec', '--json'], { env: newKeyOnly });
    expect(blind.code).toBe(1);
    expect(blind.stdout).toContain('temporal.codec.previousKeyFiles');
  });

  test('failure messages are encoded too: "Encoded failure" in history, the reason in the CLI', async () => {
    const run = await stack.cli([
      ...['job', 'run', '--id', 'job-codec-fail', '--profile', 'missing-bundle'],
      ...['--repo', repo, '--task', task, '--agent-command', 'true'],
    ]);
    expect(run.code).not.toBe(0);
    // This host has no secrets key at all: the reason says so, and how to fix it.
    const reason = 'profile missing-bundle: key file';
    expect(run.stderr + run.stdout).toContain(reason);
    const text = historyText(await showHistory('job-codec-fail'));
    expect(text).toContain('Encoded failure');
    expect(text).not.toContain(reason);
  });

  test('the codec endpoint decodes for the Web UI with the token, and refuses without it', async () => {
    const codec = new AesGcmCodec(loadCodecKey(keyFile));
    const started = JSON.parse(await showHistory('job-codec')) as {
      events: { workflowExecutionStartedEventAttributes?: { input: { payloads: unknown[] } } }[];
    };
    const input = started.events[0]!.workflowExecutionStartedEventAttributes!.input;
    const base = `http://127.0.0.1:${codecPort}`;
    const post = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(input),
      });

    expect((await post('/decode')).status).toBe(401);
    expect((await post(`/${'0'.repeat(64)}/decode`)).status).toBe(401);
    const decoded = await post(`/${codec.endpointToken()}/decode`, { 'x-namespace': 'default' });
    expect(decoded.status).toBe(200);
    const body = (await decoded.json()) as { payloads: { data: string }[] };
    expect(Buffer.from(body.payloads[0]!.data, 'base64').toString('utf8')).toContain(task);
    const viaHeader = await post('/decode', { authorization: `Bearer ${codec.endpointToken()}` });
    expect(viaHeader.status).toBe(200);

    // The browser's preflight from the UI's origin.
    const preflight = await fetch(`${base}/${codec.endpointToken()}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
    // A client with the key reads the outcome.
    const keyed = new Client({
      connection: await Connection.connect({ address: temporalAddress() }),
      dataConverter: dataConverter(codec),
    });
    await expect(keyed.workflow.getHandle('job-codec').result()).resolves.toMatchObject({ status: 'FAILED' });
    await keyed.connection.close();
  });
});
