// `agentlab doctor` with the qemu backend enabled: its tools, the image directory, and the accelerator the
// worker found (read from the worker's record, never probed by doctor itself).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { CLI } from './support/stack';

describe('agentlab doctor: qemu backend', () => {
  const home = mkdtempSync(join(tmpdir(), 'agentlab-doctor-qemu-'));
  const configPath = join(home, 'config.yaml');
  const dataDir = join(home, 'data');
  const doctor = async () => {
    const result = await execa(process.execPath, [CLI, 'doctor', '--json'], {
      env: { ...process.env, AGENTLAB_CONFIG: configPath },
      reject: false,
    });
    const checks = JSON.parse(result.stdout).checks as { name: string; status: string; detail: string; fix?: string }[];
    return new Map(checks.map((c) => [c.name, c]));
  };

  test('a missing image is a failure with its fix; the accelerator is the worker’s recorded probe', async () => {
    writeFileSync(
      configPath,
      YAML.stringify({
        dataDir,
        temporal: { address: '127.0.0.1:1' },
        worker: { backends: ['qemu'] },
        qemu: { imageDir: join(home, 'no-image') },
      }),
    );
    let checks = await doctor();
    expect(checks.get('qemu image')).toMatchObject({
      status: 'fail',
      detail: `${join(home, 'no-image')} has no image.json`,
      fix: expect.stringContaining('scripts/build-guest-image.sh'),
    });
    expect(checks.get('qemu accelerator')).toMatchObject({ status: 'skip' });
    expect(['ok', 'fail']).toContain(checks.get('qemu tools')?.status);

    mkdirSync(join(dataDir, 'qemu'), { recursive: true });
    const reason = 'a kernel under KVM did not get through its boot in 15 s';
    writeFileSync(
      join(dataDir, 'qemu', 'accelerator.json'),
      JSON.stringify({ bootId: 'b', kernel: 'k', accelerator: 'tcg', reason }),
    );
    checks = await doctor();
    expect(checks.get('qemu accelerator')).toMatchObject({ status: 'warn', detail: `tcg: ${reason}` });
  });
});
