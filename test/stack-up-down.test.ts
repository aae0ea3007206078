// `agentlab up | status | down`: the embedded stack starts a persistent dev server and a worker, reuses
// them when already up, and stops both.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { statusSchema } from '../cli/json-schemas';
import { CLI, freePort } from './support/stack';

describe('agentlab up, status, down', () => {
  const home = mkdtempSync(join(tmpdir(), 'agentlab-up-'));
  const configPath = join(home, 'config.yaml');
  const cli = (...args: string[]) =>
    execa(process.execPath, [CLI, ...args], {
      env: { ...process.env, AGENTLAB_CONFIG: configPath },
      reject: false,
      timeout: 120_000,
    });

  beforeAll(async () => {
    const [temporal, ui, guest, metrics, sdkMetrics] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    writeFileSync(
      configPath,
      YAML.stringify({
        dataDir: join(home, 'data'),
        temporal: { address: `127.0.0.1:${temporal}`, uiUrl: `http://127.0.0.1:${ui}` },
        guestApi: { listen: `127.0.0.1:${guest}` },
        worker: { metricsListen: `127.0.0.1:${metrics}`, sdkMetricsListen: `127.0.0.1:${sdkMetrics}` },
        local: { isolation: 'none' },
      }),
    );
  });
  afterAll(() => cli('down'));

  test('up starts both with a Web UI and SQLite, is idempotent, and down stops both', async () => {
    const up = await cli('up', '--json');
    expect(up.exitCode).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ temporal: { status: 'started' }, worker: { status: 'started' } });
    expect(existsSync(join(home, 'data', 'temporal.sqlite'))).toBe(true);
    const uiUrl = YAML.parse(readFileSync(configPath, 'utf8')).temporal.uiUrl;
    expect((await fetch(uiUrl)).ok).toBe(true);

    const again = await cli('up', '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({
      temporal: { status: 'already running' },
      worker: { status: 'already running' },
    });

    const status = statusSchema.parse(JSON.parse((await cli('status', '--json')).stdout));
    expect(status).toMatchObject({ temporal: { reachable: true }, worker: { healthy: true } });
    const pids = [status.temporal.pid!, status.worker.pid!];

    const down = await cli('down', '--json');
    expect(JSON.parse(down.stdout)).toEqual({ worker: 'stopped', temporal: 'stopped' });
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const after = await cli('status');
    expect(after.exitCode).toBe(5);
  });
});
