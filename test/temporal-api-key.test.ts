// Temporal Cloud's API key: temporal.apiKeyFile is checked at load, and the key reaches the server as
// `authorization: Bearer <key>` on every call: a gRPC proxy in front of the dev server checks it, as Cloud does.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../common/config';
import { createExampleRepo } from '../common/example-repo';
import { sdkConnectionOptions } from '../common/temporal-tls';
import { startGrpcAuthProxy, type GrpcAuthProxy } from './support/grpc-auth-proxy';
import { makeTestPki, SERVER_NAME, type TestPki } from './support/tls-proxy';
import { SCRIPTED_AGENT, TestStack, temporalAddress, type CliResult } from './support/stack';

const KEY = 'agentlab-test-api-key-0123456789abcdef';

function keyFile(dir: string, name: string, content: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

describe('temporal.apiKeyFile', () => {
  let dir: string;
  let pki: TestPki;
  let proxy: GrpcAuthProxy;
  let stack: TestStack;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentlab-api-key-'));
    pki = makeTestPki(join(dir, 'pki'));
    proxy = await startGrpcAuthProxy(pki, temporalAddress(), KEY);
    const tls = { caFile: pki.caFile, serverName: SERVER_NAME };
    const apiKeyFile = keyFile(dir, 'api-key', `${KEY}\n`);
    stack = await new TestStack({ temporal: { address: proxy.address, tls, apiKeyFile } }).init();
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });

  const cliWithKey = (file: string, args: string[]): Promise<CliResult> =>
    stack.cli(args, { env: { AGENTLAB_CONFIG: stack.configVariant((c) => (c.temporal!.apiKeyFile = file)) } });

  test('the key reaches the server as the bearer credential of every call; the CLI works through it', async () => {
    proxy.authorizations.length = 0;
    const list = await stack.cli(['job', 'list', '--json']);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(proxy.authorizations.length).toBeGreaterThan(0);
    expect(new Set(proxy.authorizations)).toEqual(new Set([`Bearer ${KEY}`]));
  });

  test("the worker's native connection sends it too: a job runs to COMPLETED through the checking proxy", async () => {
    await stack.startWorker();
    const repo = await createExampleRepo(stack.home);
    const run = await stack.cli([
      ...['job', 'run', '--id', 'api-key-job', '--repo', repo, '--task', 'leave a note'],
      ...['--agent-command', SCRIPTED_AGENT],
    ]);
    expect(run.stderr).toContain('job api-key-job COMPLETED');
    expect(run.code).toBe(0);
    expect(new Set(proxy.authorizations)).toEqual(new Set([`Bearer ${KEY}`]));
  }, 120_000);

  test('a key the server refuses: exit 5 naming the address and the key file, never the key', async () => {
    const wrong = keyFile(dir, 'wrong-key', 'not-the-key-at-all-0123456789');
    const result = await cliWithKey(wrong, ['job', 'list', '--json']);
    expect(result.code).toBe(5);
    const error = (JSON.parse(result.stdout) as { error: { code: string; message: string } }).error;
    expect(error).toMatchObject({ code: 'unauthenticated' });
    expect(error.message).toContain(
      `Temporal at ${proxy.address} refused the API key in temporal.apiKeyFile (${wrong})`,
    );
    expect(result.stdout + result.stderr).not.toContain('not-the-key-at-all');
  });

  test('a key file others may read, an empty one or a missing one: config errors naming temporal.apiKeyFile', async () => {
    const open = keyFile(dir, 'open-key', KEY, 0o644);
    const opened = await cliWithKey(open, ['job', 'list']);
    expect(opened.code).toBe(2);
    expect(opened.stderr).toContain(`temporal.apiKeyFile: ${open} has mode 0644`);

    const empty = keyFile(dir, 'empty-key', '\n');
    const emptied = await cliWithKey(empty, ['doctor']);
    expect(emptied.code).toBe(2);
    expect(emptied.stderr).toContain(`temporal.apiKeyFile: ${empty} is empty`);

    const missing = await cliWithKey(join(dir, 'nope'), ['job', 'list']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('temporal.apiKeyFile: ');
    expect(missing.stderr).toContain('does not exist');
  });

  test("the SDK's connection options carry the key, and TLS without a tls section (the system's CAs)", () => {
    const apiKeyFile = keyFile(dir, 'cloud-key', `${KEY}\n`);
    const raw = { temporal: { address: 'ns.acct.tmprl.cloud:7233', apiKeyFile } };
    const config = parseConfig(raw, 'test', {});
    const options = sdkConnectionOptions(config.temporal);
    expect(options).toEqual({ address: 'ns.acct.tmprl.cloud:7233', apiKey: KEY });
  });
});
