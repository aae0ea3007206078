// `agentlab secrets …` through the real CLI and the real age binaries: encryption at rest, redaction,
// permission checks that change nothing, validation and the usage errors of each flag.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';

const CLI = join(__dirname, '..', 'dist', 'cli', 'main.js');
const SECRET = 'sk-test-Zq8vW3nLp0rT5yXu';
const TOKEN = 'ghp_Kd93jfQpLm20xVbNw7';

describe('agentlab secrets', () => {
  let home: string;
  let keyFile: string;
  let dir: string;
  let bundle: string;

  const cli = async (args: string[], input?: string) => {
    const r = await execa(process.execPath, [CLI, 'secrets', ...args], {
      reject: false,
      input: input ?? '',
      env: {
        AGENTLAB_SECRETS_KEY_FILE: keyFile,
        AGENTLAB_SECRETS_DIR: dir,
        XDG_CONFIG_HOME: home,
        AGENTLAB_CONFIG: join(home, 'absent.yaml'),
      },
    });
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'agentlab-secrets-'));
    keyFile = join(home, 'keys', 'age.key');
    dir = join(home, 'secrets');
    bundle = join(dir, 'default.age');
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  test('init creates a 0600 age key and refuses to overwrite it without --force', async () => {
    const init = await cli(['init', '--json']);
    expect(init.code).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ keyFile, publicKey: expect.stringMatching(/^age1/) });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile, 'utf8');
    expect(key).toContain('AGE-SECRET-KEY-');
    const again = await cli(['init']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--force');
    expect(readFileSync(keyFile, 'utf8')).toBe(key);
  });

  test('set-env and set-git store age ciphertext; show redacts, --reveal reveals', async () => {
    const viaFlag = await cli(['set-env', '--bundle', 'default', '--name', 'API_KEY', '--value', SECRET]);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stderr).toMatch(/warning: --value .*--value-file/);
    const viaStdin = await cli(
      ['set-env', '--bundle', 'default', '--name', 'FROM_STDIN', '--value-file', '-'],
      'piped-value-123\n',
    );
    expect(viaStdin.code).toBe(0);
    const git = await cli(['set-git', '--bundle', 'default', '--token', TOKEN, '--username', 'bot']);
    expect(git.code).toBe(0);

    const onDisk = readFileSync(bundle);
    expect(onDisk.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    for (const value of [SECRET, TOKEN, 'piped-value-123', 'API_KEY']) expect(onDisk.includes(value)).toBe(false);
    expect(statSync(bundle).mode & 0o777).toBe(0o600);

    for (const args of [['show', '--bundle', 'default'], ['show', '--bundle', 'default', '--json'], ['show']]) {
      const shown = await cli(args);
      expect(shown.code).toBe(0);
      for (const value of [SECRET, TOKEN, 'piped-value-123']) {
        expect(shown.stdout + shown.stderr).not.toContain(value);
      }
    }
    const redacted = JSON.parse((await cli(['show', '--bundle', 'default', '--json'])).stdout);
    expect(redacted).toMatchObject({ env: { API_KEY: `sk…(${SECRET.length} chars)` }, git: { username: 'bot' } });

    const revealed = await cli(['show', '--bundle', 'default', '--reveal', '--json']);
    expect(JSON.parse(revealed.stdout)).toMatchObject({
      env: { API_KEY: SECRET, FROM_STDIN: 'piped-value-123' },
      git: { username: 'bot', token: TOKEN },
    });
    const list = await cli(['show', '--json']);
    expect(JSON.parse(list.stdout).bundles.map((b: { name: string }) => b.name)).toEqual(['default']);

    const valid = await cli(['validate']);
    expect(valid.code).toBe(0);
    expect(valid.stderr).toContain('ok: bundle "default"');
  });

  test('set-git with an SSH key replaces the token (known hosts required); unset-env removes a variable', async () => {
    const sshKey = join(home, 'id_ed25519');
    const knownHosts = join(home, 'known_hosts');
    writeFileSync(
      sshKey,
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
    );
    writeFileSync(
      knownHosts,
      'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n',
    );
    const set = await cli(['set-git', '--bundle', 'team', '--ssh-key-file', sshKey, '--known-hosts-file', knownHosts]);
    expect(set.code).toBe(0);
    expect(set.stderr).not.toContain('warning');
    const shown = JSON.parse((await cli(['show', '--bundle', 'team', '--reveal', '--json'])).stdout);
    expect(shown.git).toMatchObject({ token: null, sshPrivateKey: readFileSync(sshKey, 'utf8') });
    expect(shown.git.knownHosts).toContain('github.com ssh-ed25519');

    expect(
      (await cli(['set-env', '--bundle', 'team', '--name', 'GONE', '--value-file', '-'], 'bye-bye-value')).code,
    ).toBe(0);
    expect((await cli(['unset-env', '--bundle', 'team', '--name', 'GONE'])).code).toBe(0);
    expect(JSON.parse((await cli(['show', '--bundle', 'team', '--json'])).stdout).env).toEqual({});
    expect((await cli(['unset-env', '--bundle', 'team', '--name', 'GONE'])).code).toBe(3);
    expect((await cli(['show', '--bundle', 'absent'])).code).toBe(3);
    rmSync(join(dir, 'team.age'));
  });

  test('a bundle whose content breaks the schema fails validate naming the bundle and the field', async () => {
    const bad = join(dir, 'badfield.age');
    // Encrypted the way the CLI does it: plaintext only ever on a pipe.
    const encrypted = await execa('age', ['--encrypt', '--identity', keyFile], {
      input: JSON.stringify({ version: 1, env: { lower: 'x' } }),
      encoding: null,
      stripFinalNewline: false, // ciphertext: a last byte 0x0a is data (1 run in 256 failed without this)
    });
    writeFileSync(bad, encrypted.stdout, { mode: 0o600 });
    try {
      const result = await cli(['validate', '--bundle', 'badfield']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/bundle "badfield".*env\.lower/);
    } finally {
      rmSync(bad);
    }
  });

  test('a key or bundle readable by others is refused with the fix, and nothing changes', async () => {
    const before = readFileSync(bundle);
    chmodSync(keyFile, 0o644);
    try {
      for (const args of [
        ['set-env', '--bundle', 'default', '--name', 'API_KEY', '--value-file', '-'],
        ['show', '--bundle', 'default'],
      ]) {
        const refused = await cli(args, 'new-value-xyz');
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain(`mode 0644`);
        expect(refused.stderr).toContain(`chmod 600 ${keyFile}`);
      }
    } finally {
      chmodSync(keyFile, 0o600);
    }
    chmodSync(bundle, 0o644);
    try {
      const refused = await cli(['set-env', '--bundle', 'default', '--name', 'OTHER', '--value-file', '-'], 'v-123456');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`chmod 600 ${bundle}`);
      expect(statSync(bundle).mode & 0o777).toBe(0o644);
    } finally {
      chmodSync(bundle, 0o600);
    }
    expect(readFileSync(bundle).equals(before)).toBe(true);
  });

  test('a corrupted bundle fails validate with exit 1, named', async () => {
    const broken = join(dir, 'broken.age');
    writeFileSync(broken, 'not age at all\n', { mode: 0o600 });
    try {
      const result = await cli(['validate']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('bundle "broken"');
      expect(result.stderr).toContain('ok: bundle "default"');
      const json = await cli(['validate', '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({
        ok: false,
        bundles: [{ name: 'broken', ok: false }, { ok: true }],
      });
    } finally {
      rmSync(broken);
    }
  });

  test('bad names and conflicting flags exit 2 naming the flag, and change nothing', async () => {
    const before = readFileSync(bundle);
    const badName = await cli(['set-env', '--bundle', 'default', '--name', 'lower-case', '--value-file', '-'], 'x');
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('--name');
    const badBundle = await cli(['set-env', '--bundle', '../x', '--name', 'OK', '--value-file', '-'], 'x');
    expect(badBundle.code).toBe(2);
    expect(badBundle.stderr).toContain('--bundle');
    const both = await cli(['set-git', '--bundle', 'default', '--token', 'abcdefgh', '--ssh-key-file', keyFile]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--token.*--ssh-key-file/);
    const noHosts = await cli(['set-git', '--bundle', 'default', '--ssh-key-file', keyFile]);
    expect(noHosts.code).toBe(2);
    expect(noHosts.stderr).toContain('--known-hosts-file');
    expect(readFileSync(bundle).equals(before)).toBe(true);
  });
});
