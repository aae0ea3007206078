// The QEMU guest image booting for real (docs/qemu-guest.md): the image is built from Debian's packages (or
// reused from its cache), booted under KVM when this host has it and under TCG always, and must get from
// power-on through cloud-init (the Proxmox backend's own user-data, on a NoCloud seed) to the guest runner's
// first request: its bootstrap claim, to a stand-in guest API on the host. Then the guest agent reports the
// guest's address and shuts it down cleanly, and nothing is left: no QEMU process, no overlay, no seed.
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stripVTControlCharacters } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import { guestAgentCommand, guestIpv4Addresses } from '../../backends/qemu/guest-agent';
import { createOverlay, ensureGuestImage, type GuestImage } from '../../backends/qemu/guest-image';
import { dhcpNetwork, writeNoCloudSeed } from '../../backends/qemu/nocloud-seed';
import { probeKvm, qemuArgs, type Accelerator } from '../../backends/qemu/qemu-command';
import type { GuestBootstrap } from '../../common/contract';
import { eventually } from '../support/stack';

const TOOLS = ['qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'genisoimage'];
const missingTools = TOOLS.filter((tool) => execa.sync('sh', ['-c', `command -v ${tool}`], { reject: false }).exitCode);
const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');
/** The host as user-mode networking shows it to the guest: it maps to the host's 127.0.0.1. */
const HOST_FROM_GUEST = '10.0.2.2';
const GUEST_ADDRESS = '10.0.2.15';
/** A locally administered address in QEMU's own prefix. */
const GUEST_MAC = '52:54:00:a9:79:99';
/** Power-on to the runner's first request; TCG emulates every instruction, so it gets far longer. */
const BOOT_TIMEOUT_MS: Record<Accelerator, number> = { kvm: 120_000, tcg: 600_000 };

/** A stand-in for the guest API: records the runner's bootstrap claim and refuses it (there is no job). */
function bootstrapCatcher(): { server: Server; claim: Promise<{ body: GuestBootstrap; atMs: number }> } {
  let resolveClaim: (claim: { body: GuestBootstrap; atMs: number }) => void = () => undefined;
  const claim = new Promise<{ body: GuestBootstrap; atMs: number }>((resolve) => (resolveClaim = resolve));
  const server = createServer((req, res) => {
    const atMs = Date.now();
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/bootstrap')
        resolveClaim({ body: JSON.parse(text) as GuestBootstrap, atMs });
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"boot test: no job here"}');
    });
  });
  return { server, claim };
}

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('QEMU guest image', () => {
  test('the QEMU tools are installed (npm run test:qemu installs them)', () => {
    expect(missingTools).toEqual([]);
  });

  let image: GuestImage;
  const figures: Record<string, unknown>[] = [];
  const report = (figure: Record<string, unknown>) => {
    figures.push(figure);
    process.stdout.write(`${JSON.stringify(figure)}\n`);
  };

  beforeAll(async () => {
    for (const pass of ['first', 'again']) {
      const started = Date.now();
      const result = await ensureGuestImage();
      image = result.image;
      report({ figure: 'guest-image-build', pass, built: result.built, seconds: (Date.now() - started) / 1000 });
    }
    const sizes = {
      disk: statSync(image.disk).size,
      kernel: statSync(image.kernel).size,
      initrd: statSync(image.initrd).size,
    };
    report({ figure: 'guest-image-size', hash: image.hash, ...sizes });
  }, 900_000);

  afterAll(() => {
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, 'qemu-guest-boot.json'), JSON.stringify(figures, null, 2) + '\n');
  });

  test('boots to the guest runner under KVM (when this host has it) and TCG, and leaves nothing behind', async () => {
    const kvm = await probeKvm(image.kernel);
    report({ figure: 'kvm', usable: kvm.usable, reason: kvm.reason });
    const accelerators: Accelerator[] = kvm.usable ? ['kvm', 'tcg'] : ['tcg'];
    const baseModified = statSync(image.disk).mtimeMs;
    for (const accelerator of accelerators) await bootToRunner(image, accelerator, report);
    expect(statSync(image.disk).mtimeMs).toBe(baseModified); // the overlays took every write
  }, 1_800_000);
});

async function bootToRunner(image: GuestImage, accelerator: Accelerator, report: (f: Record<string, unknown>) => void) {
  const dir = mkdtempSync(join(tmpdir(), `agentlab-qemu-${accelerator}-`));
  const { server, claim } = bootstrapCatcher();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const vm = {
    image,
    accelerator,
    overlay: join(dir, 'disk.qcow2'),
    seed: join(dir, 'seed.iso'),
    consoleLog: join(dir, 'console.log'),
    guestAgentSocket: join(dir, 'qga.sock'),
    cores: 2,
    memoryMb: 1024,
    mac: GUEST_MAC,
  };
  const bootstrap: GuestBootstrap = {
    controllerUrl: `http://${HOST_FROM_GUEST}:${port}`,
    jobId: `qemu-boot-${accelerator}`,
    vmid: 7999,
    token: randomBytes(24).toString('hex'),
  };
  let qemu: execa.ExecaChildProcess | undefined;
  try {
    await createOverlay(image.disk, vm.overlay);
    await writeNoCloudSeed(vm.seed, {
      bootstrap,
      instanceId: `agentlab-7999-${accelerator}`,
      hostname: 'agentlab-7999',
      network: dhcpNetwork(GUEST_MAC),
    });

    const startedMs = Date.now();
    qemu = execa('qemu-system-x86_64', qemuArgs(vm), { reject: false });
    const exited = qemu.then((result) => {
      throw new Error(`qemu exited before the runner called (${result.exitCode}): ${result.stderr}`);
    });
    const timedOut = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`no bootstrap claim within ${BOOT_TIMEOUT_MS[accelerator]} ms`)),
        BOOT_TIMEOUT_MS[accelerator],
      ).unref(),
    );
    const { body, atMs } = await Promise.race([claim, exited, timedOut]);
    expect(body).toMatchObject({ token: bootstrap.token, jobId: bootstrap.jobId, vmid: bootstrap.vmid });
    const bootToRunnerSeconds = (atMs - startedMs) / 1000;

    // The address a backend would report, from the guest agent as Proxmox reads it.
    const addresses = await eventually('the guest agent reports the guest address', async () => {
      const found = await guestIpv4Addresses(vm.guestAgentSocket);
      return found.includes(GUEST_ADDRESS) ? found : undefined;
    });
    expect(addresses).toContain(GUEST_ADDRESS);

    const shutdownStartedMs = Date.now();
    await guestAgentCommand(vm.guestAgentSocket, 'guest-shutdown', { noReply: true });
    const result = await Promise.race([
      qemu,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 120_000).unref()),
    ]);
    expect(result?.exitCode).toBe(0); // the guest powered off; QEMU was not killed
    const shutdownSeconds = (Date.now() - shutdownStartedMs) / 1000;

    // systemd colours its status lines; without the escapes they read as on a terminal.
    const consoleText = stripVTControlCharacters(readFileSync(vm.consoleLog, 'utf8'));
    expect(consoleText).toMatch(/Cloud-init v\. \S+ running 'init'/); // the stage whose write_files wrote the bootstrap
    expect(consoleText).toContain('Started agent-runner.service');
    expect(consoleText).toContain('reboot: Power down');
    report({ figure: 'qemu-boot', accelerator, bootToRunnerSeconds, shutdownSeconds });
  } finally {
    if (qemu?.pid !== undefined && processAlive(qemu.pid)) {
      qemu.kill('SIGKILL');
      await qemu;
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // The console is what tells why a boot went wrong: kept beside the figures.
    mkdirSync(ARTIFACTS, { recursive: true });
    if (existsSync(vm.consoleLog))
      copyFileSync(vm.consoleLog, join(ARTIFACTS, `qemu-guest-boot-${accelerator}.console.log`));
    rmSync(dir, { recursive: true, force: true });
  }
  expect(qemu?.pid !== undefined && processAlive(qemu.pid)).toBe(false);
  expect(existsSync(vm.overlay)).toBe(false);
}
