// The Node the deployment files install: Node 24, the release the suite tests (.node-version), never an
// end-of-life one: the Compose worker image, the VM template's checked tarball, the host installer's check.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { words } from './support/dry-run';

const ROOT = join(__dirname, '..');
const PINNED = readFileSync(join(ROOT, '.node-version'), 'utf8').trim();
const MAJOR = PINNED.split('.')[0]!;
const TARBALL = `node-v${PINNED}-linux-x64.tar.xz`;

const scratch = mkdtempSync(join(tmpdir(), 'agentlab-deploy-node-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('docker-compose.yml', () => {
  test('the worker runs on the Node 24 image', () => {
    const compose = YAML.parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
    expect(MAJOR).toBe('24');
    expect(compose.services.worker.image).toBe(`node:${MAJOR}-bookworm`);
  });
});

describe('create_template.sh', () => {
  let lines: string[];
  beforeAll(async () => {
    const dryRun = ['--dry-run', '--image', '/srv/debian-12.qcow2', '--vmid', '9000'];
    lines = (await execa('bash', [join(ROOT, 'scripts', 'create_template.sh'), ...dryRun])).stdout.split('\n');
  });
  const line = (prefix: string, including = ''): string => {
    const found = lines.find((l) => l.startsWith(prefix) && l.includes(including));
    if (!found) throw new Error(`no dry-run line starts with ${prefix} and has ${including}:\n${lines.join('\n')}`);
    return found;
  };

  test('downloads the pinned official tarball and checks it before the image is touched', async () => {
    const release = `https://nodejs.org/dist/v${PINNED}`;
    const sums = lines.indexOf(line('curl', `${release}/SHASUMS256.txt`));
    const tarball = lines.indexOf(line('curl', `${release}/${TARBALL}`));
    const check = lines.indexOf(line('sh -c', 'sha256sum'));
    expect(sums).toBeGreaterThanOrEqual(0);
    expect(tarball).toBeGreaterThan(sums);
    expect(check).toBeGreaterThan(tarball);
    expect(check).toBeLessThan(lines.indexOf(line('virt-customize')));
  });

  test('its checksum step accepts the tarball the release lists and rejects any other', async () => {
    const [command, ...args] = await words(line('sh -c', 'sha256sum'));
    const dir = join(scratch, 'download');
    mkdirSync(dir);
    const runCheck = async (tarball: string, sums: string) => {
      writeFileSync(join(dir, TARBALL), tarball);
      writeFileSync(join(dir, 'SHASUMS256.txt'), sums);
      // The step's own words, with the download directory (the argument before the tarball's name) swapped.
      const swapped = args.map((arg, i) => (args[i + 1] === TARBALL ? dir : arg));
      return (await execa(command!, swapped, { reject: false })).exitCode;
    };
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const listing = (text: string) =>
      `${sha('other')}  node-v${PINNED}-linux-x64.tar.gz\n${sha(text)}  ${TARBALL}\n${sha('x')}  ${TARBALL}.asc\n`;
    expect(await runCheck('the release', listing('the release'))).toBe(0);
    expect(await runCheck('tampered', listing('the release'))).not.toBe(0);
    expect(await runCheck('the release', `${sha('the release')}  node-v${PINNED}-linux-x64.tar.gz\n`)).not.toBe(0);
  });

  test("the image gets that Node in /usr/local, not Debian's, and the runner's unit starts it", async () => {
    const customize = await words(line('virt-customize'));
    const value = (flag: string) => customize.filter((_, i) => customize[i - 1] === flag);
    const packages = value('--install').join(',').split(',');
    expect(packages).not.toContain('nodejs');
    expect(packages).not.toContain('npm');
    expect(value('--upload')).toContain(`/var/tmp/agentlab-template-9000-node/${TARBALL}:/var/tmp/${TARBALL}`);
    const commands = value('--run-command');
    const unpack = commands.findIndex((c) => c.startsWith(`tar -xJf /var/tmp/${TARBALL} -C /usr/local `));
    const agents = commands.findIndex((c) => c.includes('npm install --global'));
    expect(unpack).toBeGreaterThanOrEqual(0);
    expect(agents).toBeGreaterThan(unpack);
    expect(commands[agents]).toMatch(/^env PATH=\/usr\/local\/sbin:\/usr\/local\/bin:/);
    const unit = readFileSync(join(ROOT, 'guest', 'agent-runner.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/node \/usr\/local\/lib\/agentlab\/agent-runner\.js /m);
  });
});

describe('install_host.sh', () => {
  const install = (nodeBin: string) =>
    execa('bash', [join(ROOT, 'scripts', 'install_host.sh'), '--dry-run'], {
      env: { PATH: `${nodeBin}:${process.env.PATH}` },
      reject: false,
    });

  test('the worker unit runs the Node 24 first on PATH', async () => {
    const node24 = join(ROOT, '.tools', 'node24', 'bin');
    const result = await install(node24);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`ExecStart=${join(node24, 'node')} /opt/agentlab/dist/worker/main.js`);
  });

  test('an end-of-life Node first on PATH: exit 1 naming Node 24, nothing installed', async () => {
    const bin = join(scratch, 'node20');
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho v20.19.5\n');
    chmodSync(join(bin, 'node'), 0o755);
    const result = await install(bin);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`the worker runs on Node 24 (the active LTS); found ${bin}/node (v20.19.5)`);
  });
});
