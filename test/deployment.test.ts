// Production deployment artifacts: docker-compose.yml passes the Compose spec loader, create_template.sh
// --dry-run prints qm commands Proxmox's own schema accepts, install_host.sh --dry-run installs what it says.
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { readdirSync, readFileSync } from 'node:fs';
import { AGENT_PACKAGES } from '../common/agents';
import { QM_COMMAND_PATHS } from '../simulators/proxmox/endpoints';
import { validateParams } from '../simulators/proxmox/schema';
import { words } from './support/dry-run';

const ROOT = join(__dirname, '..');
const COMPOSE_LINT = join(ROOT, '.tools', 'compose-lint');

describe('deployment', () => {
  beforeAll(async () => {
    // compose-go is the loader `docker compose config` uses; built once from bench/compose-lint.
    await execa('go', ['build', '-o', COMPOSE_LINT, '.'], { cwd: join(ROOT, 'bench', 'compose-lint') });
  }, 300_000);

  test('docker-compose.yml is valid Compose, with the admin-tools schema job and no auto-setup image', async () => {
    const result = await execa(COMPOSE_LINT, [join(ROOT, 'docker-compose.yml')], { reject: false });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const compose = YAML.parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
    const images = Object.values(compose.services as Record<string, { image: string }>).map((s) => s.image);
    expect(images.some((i) => i.includes('auto-setup'))).toBe(false);
    expect(compose.services['temporal-schema'].image).toMatch(/^temporalio\/admin-tools:/);
    expect(compose.services.temporal.depends_on['temporal-schema'].condition).toBe('service_completed_successfully');
    expect(compose.services.worker.profiles).toEqual(['worker']);
  });

  test('the linter rejects a broken compose file, so its pass above means something', async () => {
    const broken = join(ROOT, 'test', 'fixtures', 'broken-compose.yml');
    const result = await execa(COMPOSE_LINT, [broken], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('condition');
  });

  test('create_template.sh --dry-run prints a qm sequence the Proxmox schema accepts', async () => {
    const result = await execa('bash', [
      join(ROOT, 'scripts', 'create_template.sh'),
      '--dry-run',
      '--image',
      '/srv/debian-12.qcow2',
      '--vmid',
      '9000',
    ]);
    const lines = result.stdout.split('\n').filter(Boolean);
    const qm = lines.filter((l) => l.startsWith('qm '));
    expect(qm.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'qm create',
      'qm set',
      'qm set',
      'qm set',
      'qm template',
    ]);
    for (const line of qm) {
      const [, verb, vmid, ...rest] = await words(line);
      const params: Record<string, string> = { node: 'pve', vmid: vmid! };
      for (let i = 0; i < rest.length; i += 2) params[rest[i]!.replace(/^--/, '')] = rest[i + 1]!;
      const path = QM_COMMAND_PATHS[verb as keyof typeof QM_COMMAND_PATHS];
      expect({ line, errors: validateParams(path, 'POST', params) }).toEqual({ line, errors: {} });
    }
    expect(lines.some((l) => l.startsWith('virt-customize') && l.includes('agent-runner.service'))).toBe(true);
    // The same agent CLIs, at the same versions, as the local backend's tools directory.
    const agents = lines.find((l) => l.startsWith('virt-customize'))!;
    for (const { name, version } of Object.values(AGENT_PACKAGES)) expect(agents).toContain(`${name}@${version}`);
    // The compiled runner requires its siblings: the template must carry them all.
    const siblings = readdirSync(join(ROOT, 'dist', 'guest')).filter((file) => file.endsWith('.js'));
    expect(siblings).toEqual(expect.arrayContaining(['agent-runner.js', 'runner.js', 'git-input.js', 'agents.js']));
    for (const sibling of siblings) {
      const upload = `dist/guest/${sibling}:/usr/local/lib/agentlab/${sibling}`;
      expect(lines.some((l) => l.startsWith('virt-customize') && l.includes(upload))).toBe(true);
    }
  });

  test('create_template.sh rejects bad input, naming the flag', async () => {
    const result = await execa(
      'bash',
      [join(ROOT, 'scripts', 'create_template.sh'), '--dry-run', '--image', 'x', '--vmid', 'abc'],
      { reject: false },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--vmid: expected an integer');
  });

  test('install_host.sh --dry-run installs the worker unit with its config and data dirs', async () => {
    // A host with Node 24 first on PATH (the installer refuses any other: deployment-node.test.ts).
    const PATH = `${join(ROOT, '.tools', 'node24', 'bin')}:${process.env.PATH}`;
    const result = await execa(
      'bash',
      [join(ROOT, 'scripts', 'install_host.sh'), '--dry-run', '--prefix', '/opt/agentlab-test'],
      { env: { PATH } },
    );
    expect(result.stdout).toContain('ExecStart=');
    expect(result.stdout).toContain('/opt/agentlab-test/dist/worker/main.js');
    expect(result.stdout).toContain('Environment=AGENTLAB_CONFIG=/etc/agentlab/config.yaml');
    expect(result.stdout).toContain('systemctl enable --now agentlab-worker.service');
  });
});
