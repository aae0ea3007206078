// `npm run setup` (scripts/ensure-deps.sh) on a machine that lacks a host package and cannot install it:
// it stops before installing anything, naming the package and the command; with everything present it
// passes. And `agentlab up` there fails at once, naming the tool, and leaves nothing running.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import execa from 'execa';
import { errorSchema } from '../cli/json-schemas';
import { agentlab, embeddedStack, heldPorts, liveProcesses, type EmbeddedStack } from './support/embedded-stack';

const ROOT = join(__dirname, '..');

/** A PATH of one directory: symlinks to every command on this PATH except `hidden`. */
function pathWithout(...hidden: string[]): string {
  const bin = mkdtempSync(join(tmpdir(), 'agentlab-path-'));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir)) {
      if (hidden.includes(name) || existsSync(join(bin, name))) continue;
      symlinkSync(join(dir, name), join(bin, name));
    }
  }
  return bin;
}

/** apt-get hidden: whatever is missing, nothing can be installed. */
const noInstall = (...hidden: string[]) => ({ ...process.env, PATH: pathWithout('apt-get', ...hidden) });

describe('scripts/ensure-deps.sh', () => {
  test('a missing host package without apt-get: exits non-zero naming the package and the command, installs nothing', async () => {
    // A copy of the checkout's setup files alone: had it gone on, it would have created node_modules and .tools.
    const checkout = mkdtempSync(join(tmpdir(), 'agentlab-checkout-'));
    mkdirSync(join(checkout, 'scripts'));
    for (const file of ['scripts/ensure-deps.sh', 'scripts/install-temporal.sh', 'scripts/host-packages.txt']) {
      copyFileSync(join(ROOT, file), join(checkout, file));
    }
    for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, file), join(checkout, file));

    const result = await execa('bash', [join(checkout, 'scripts', 'ensure-deps.sh')], {
      env: noInstall('bwrap'),
      extendEnv: false,
      reject: false,
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/missing host packages: bubblewrap \(bwrap\)/);
    expect(result.stderr).toMatch(/install them with: (sudo )?apt-get install -y bubblewrap\b/);
    expect(readdirSync(checkout).sort()).toEqual(['package-lock.json', 'package.json', 'scripts']);
  });

  test('with everything present: exits 0 and installs nothing', async () => {
    const result = await execa('bash', [join(ROOT, 'scripts', 'ensure-deps.sh'), '--for', 'test'], {
      env: noInstall(),
      extendEnv: false,
      reject: false,
    });
    expect(result.stderr).not.toMatch(/missing|installing/);
    expect(result.exitCode).toBe(0);
  });

  test('--host-only: the host packages and nothing else (the qemu demo runs it after `npm run setup`)', async () => {
    // A checkout without node_modules: anything past the host packages would run npm ci here.
    const checkout = mkdtempSync(join(tmpdir(), 'agentlab-checkout-'));
    mkdirSync(join(checkout, 'scripts'));
    for (const file of ['scripts/ensure-deps.sh', 'scripts/install-temporal.sh', 'scripts/host-packages.txt']) {
      copyFileSync(join(ROOT, file), join(checkout, file));
    }
    for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, file), join(checkout, file));
    const result = await execa('bash', [join(checkout, 'scripts', 'ensure-deps.sh'), '--for', 'demo', '--host-only'], {
      env: noInstall(),
      extendEnv: false,
      reject: false,
    });
    expect(result.stderr).not.toMatch(/missing|installing/);
    expect(result.exitCode).toBe(0);
    expect(readdirSync(checkout).sort()).toEqual(['package-lock.json', 'package.json', 'scripts']);
  });

  test('an unknown --for: exit 2 naming what it expects', async () => {
    const result = await execa('bash', [join(ROOT, 'scripts', 'ensure-deps.sh'), '--for', 'prod'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--for expects demo, test, cluster, qemu or lint, got 'prod'");
  });

  test('PostgreSQL is asked for by `--for cluster` (npm run test:cluster) alone', async () => {
    const env = noInstall('pg_ctlcluster');
    const forCluster = await execa('bash', [join(ROOT, 'scripts', 'ensure-deps.sh'), '--for', 'cluster'], {
      env,
      extendEnv: false,
      reject: false,
    });
    expect(forCluster.exitCode).not.toBe(0);
    expect(forCluster.stderr).toMatch(/missing host packages: postgresql \(pg_ctlcluster\)/);
    const forTest = await execa('bash', [join(ROOT, 'scripts', 'ensure-deps.sh'), '--for', 'test'], {
      env,
      extendEnv: false,
      reject: false,
    });
    expect(forTest.stderr).not.toMatch(/missing/);
    expect(forTest.exitCode).toBe(0);
  });
});

describe('agentlab up without bwrap', () => {
  let stack: EmbeddedStack | undefined;
  afterAll(async () => {
    if (stack) await agentlab(stack, ['down']); // only matters when the test failed: up left something
  });

  test('exits 1 within 10 s naming bwrap, and leaves no process running', async () => {
    // The default isolation (namespaces), which needs bwrap: the worker checks for it as it starts.
    stack = await embeddedStack({ local: {} });
    const started = Date.now();
    const up = await agentlab(stack, ['up', '--json'], { env: noInstall('bwrap'), timeoutMs: 60_000 });
    const elapsedMs = Date.now() - started;

    expect(up.exitCode).toBe(1);
    const { error } = errorSchema.parse(JSON.parse(up.stdout));
    expect(error.message).toContain('bwrap is not installed: apt-get install bubblewrap');
    expect(elapsedMs).toBeLessThan(10_000);
    expect(liveProcesses(stack)).toEqual([]);
    expect(await heldPorts(stack)).toEqual([]);
  });
});
