// TLS and mTLS to Temporal: the shared dev server behind a TLS-terminating proxy that requires a client certificate
// the test CA signed. The CLI and the worker connect through it; each wrong setting exits 5 with its reason.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExampleRepo } from '../common/example-repo';
import { makeTestPki, SERVER_NAME, startTlsProxy, type TestPki, type TlsProxy } from './support/tls-proxy';
import { freePort, SCRIPTED_AGENT, TestStack, WORKER, temporalAddress, type CliResult } from './support/stack';

describe('Temporal over mTLS', () => {
  let pki: TestPki;
  let proxy: TlsProxy;
  let stack: TestStack;
  let good: { caFile: string; certFile: string; keyFile: string; serverName: string };

  beforeAll(async () => {
    pki = makeTestPki(mkdtempSync(join(tmpdir(), 'agentlab-pki-')));
    proxy = await startTlsProxy(pki, temporalAddress());
    good = { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey, serverName: SERVER_NAME };
    stack = await new TestStack({ temporal: { address: proxy.address, tls: good } }).init();
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
  });

  /** The CLI with the stack's config but these temporal.tls settings. */
  const cliWithTls = (tls: Record<string, unknown>, args: string[]): Promise<CliResult> =>
    stack.cli(args, { env: { AGENTLAB_CONFIG: stack.configVariant((c) => (c.temporal!.tls = tls)) } });

  test('job list and doctor go through the mTLS proxy', async () => {
    const list = await stack.cli(['job', 'list', '--json']);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(Array.isArray((JSON.parse(list.stdout) as { jobs: unknown }).jobs)).toBe(true);

    const doctor = await stack.cli(['doctor', '--json']);
    const checks = new Map(
      (JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks.map((c) => [
        c.name,
        c,
      ]),
    );
    expect(checks.get('temporal')).toMatchObject({ status: 'ok', detail: `reachable at ${proxy.address} over TLS` });
    expect(checks.get('temporal tls')).toMatchObject({ status: 'ok' });
    expect(checks.get('temporal tls')!.detail).toMatch(/CA CN=ca; client certificate CN=client until .*; server name/);

    const expiring = { ...good, certFile: pki.expiringClientCert, keyFile: pki.expiringClientKey };
    const soon = await cliWithTls(expiring, ['doctor', '--json']);
    const tlsCheck = (JSON.parse(soon.stdout) as { checks: { name: string }[] }).checks.find(
      (c) => c.name === 'temporal tls',
    );
    expect(tlsCheck).toMatchObject({ status: 'warn', fix: `renew ${pki.expiringClientCert} before it expires` });
  });

  test('the worker connects through the proxy and runs a job to COMPLETED', async () => {
    await stack.startWorker();
    const repo = await createExampleRepo(stack.home);
    const run = await stack.cli([
      ...['job', 'run', '--id', 'tls-job', '--repo', repo, '--task', 'leave a note'],
      ...['--agent-command', SCRIPTED_AGENT],
    ]);
    expect(run.stderr).toContain('job tls-job COMPLETED');
    expect(run.code).toBe(0);
    expect((await stack.describe('tls-job')).jobStatus).toBe('COMPLETED');
  }, 120_000);

  test('agentlab up hands over to a TLS Temporal: it starts no dev server, and a failing handshake stops it (exit 5)', async () => {
    const refused = await cliWithTls({ ...good, caFile: pki.rogueCaFile }, ['up', '--json']);
    expect(refused.code).toBe(5);
    const error = (JSON.parse(refused.stdout) as { error: { code: string; message: string } }).error;
    expect(error).toMatchObject({ code: 'tls_handshake' });
    expect(error.message).toContain(`TLS handshake with Temporal at ${proxy.address} failed: unknown CA`);
    expect(existsSync(join(stack.dataDir, 'stack', 'temporal.pid'))).toBe(false);

    // The stack's worker already serves its guest API: up only checks Temporal, over TLS.
    const up = await stack.cli(['up', '--json']);
    expect(up.code).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({
      temporal: { address: proxy.address, status: 'external, TLS' },
      worker: { status: 'already running' },
    });
  });

  test('a server certificate from an unknown CA: exit 5 naming the address and the CA', async () => {
    const result = await cliWithTls({ ...good, caFile: pki.rogueCaFile }, ['job', 'list']);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`TLS handshake with Temporal at ${proxy.address} failed`);
    expect(result.stderr).toContain(
      `unknown CA: the server's certificate is not signed by a CA in temporal.tls.caFile`,
    );
    expect(result.stderr).toContain(pki.rogueCaFile);
  });

  test('no client certificate, or one the server does not trust: exit 5 naming the client certificate', async () => {
    const none = await cliWithTls({ caFile: pki.caFile, serverName: SERVER_NAME }, ['job', 'list', '--json']);
    expect(none.code).toBe(5);
    const error = (JSON.parse(none.stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('tls_handshake');
    expect(error.message).toContain(proxy.address);
    expect(error.message).toMatch(/the server requires a client certificate .*set temporal.tls.certFile and keyFile/);

    const rogue = { ...good, certFile: pki.rogueClientCert, keyFile: pki.rogueClientKey };
    const refused = await cliWithTls(rogue, ['job', 'list']);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain(
      `bad client certificate: the server refused temporal.tls.certFile (${pki.rogueClientCert}`,
    );
    expect(refused.stderr).toContain('CN=rogue-client');
  });

  test("a serverName the server's certificate is not for: exit 5, name mismatch", async () => {
    const result = await cliWithTls({ ...good, serverName: 'other.agentlab.test' }, ['job', 'list']);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(proxy.address);
    expect(result.stderr).toContain('name mismatch');
    expect(result.stderr).toContain('other.agentlab.test');
    expect(result.stderr).toContain('temporal.tls.serverName');
  });

  test('a worker with a CA that does not know the server exits 5 with the reason', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const path = stack.configVariant((config) => {
      config.temporal!.tls = { ...good, caFile: pki.rogueCaFile };
      // Ports of its own: the stack's worker may be running.
      config.worker!.sdkMetricsListen = `127.0.0.1:${ports[0]}`;
      config.worker!.metricsListen = `127.0.0.1:${ports[1]}`;
      config.guestApi!.listen = `127.0.0.1:${ports[2]}`;
    });
    const worker = spawn(process.execPath, [WORKER], { env: { ...stack.env, AGENTLAB_CONFIG: path } });
    let output = '';
    worker.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => worker.once('exit', resolve));
    expect({ code, output }).toMatchObject({ code: 5 });
    expect(output).toContain(`TLS handshake with Temporal at ${proxy.address} failed: unknown CA`);
  });

  test('a key file others may read, or a key that is not the certificate’s: config errors naming the field', async () => {
    const openKey = join(stack.home, 'open.key');
    copyFileSync(pki.clientKey, openKey);
    chmodSync(openKey, 0o644);
    const open = await cliWithTls({ ...good, keyFile: openKey }, ['job', 'list']);
    expect(open.code).toBe(2);
    expect(open.stderr).toContain(`temporal.tls.keyFile: ${openKey} has mode 0644`);
    expect(open.stderr).toContain(`chmod 600 ${openKey}`);

    const mismatch = await cliWithTls({ ...good, keyFile: pki.rogueClientKey }, ['doctor']);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain(
      `temporal.tls.keyFile: ${pki.rogueClientKey} is not the private key of ${pki.clientCert}`,
    );

    const missing = await cliWithTls({ ...good, caFile: join(stack.home, 'nope.crt') }, ['job', 'list']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('temporal.tls.caFile: ');
    expect(missing.stderr).toContain('does not exist');

    const halfPair = await cliWithTls({ caFile: pki.caFile, certFile: pki.clientCert }, ['job', 'list']);
    expect(halfPair.code).toBe(2);
    expect(halfPair.stderr).toContain('temporal.tls.keyFile: a client certificate needs both certFile and keyFile');
  });
});
