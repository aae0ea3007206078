// Bad input gets a clear error naming the field: repo URLs, durations, config files.
import execa from 'execa';
import { AGENT_COMMANDS } from '../common/agents';
import { parseConfig, ConfigError, resolveProfile } from '../common/config';
import { formatDuration, parseDuration } from '../common/duration';
import { gitRefSchema, jobRequestProblem } from '../common/schemas';
import { credentialsIn, refProblem, repoUrlProblem } from '../guest/git-input';

describe('repo URLs (one rule for the CLI, the workflow and the guest runner)', () => {
  const local = { allowLocal: true, allowLoopbackHttp: true };
  test.each([
    'https://github.com/acme/app.git',
    'ssh://git@host/acme/app.git',
    'git://host/app',
    'git@github.com:acme/app.git',
  ])('accepts %s everywhere', (url) => expect(repoUrlProblem(url)).toBeUndefined());
  test.each(['/srv/repos/app', 'file:///srv/repos/app', 'http://127.0.0.1:8080/app.git'])(
    'accepts %s only where local repositories are allowed',
    (url) => {
      expect(repoUrlProblem(url, local)).toBeUndefined();
      expect(repoUrlProblem(url)).toMatch(/needs a local-backend profile|not allowed/);
    },
  );
  test.each([
    ['ext::sh -c touch% /tmp/pwned', /remote helper/],
    ['--upload-pack=touch /tmp/pwned', /command-line option/],
    ['fd::17', /remote helper/],
    ['http://insecure.example/app.git', /"http:\/\/" is not allowed/],
    ['relative/path', /not a git URL/],
    ['https://host', /names no repository path/],
    ['', /must not be empty/],
  ])('rejects %s', (url, message) => expect(repoUrlProblem(url, local)).toMatch(message));

  test.each([
    ['https://user:s3cret@host/r.git', 'https://***@host/r.git'],
    ['https://ghp_token@github.com/acme/app.git', 'https://***@github.com/acme/app.git'],
    ['http://u:p@127.0.0.1/r.git', 'http://***@127.0.0.1/r.git'],
    ['ssh://git:pw@host/r.git', 'ssh://***@host/r.git'],
  ])('refuses credentials in %s, without repeating them', (url, shown) => {
    expect(credentialsIn(url)).toBe(shown);
    const problem = repoUrlProblem(url, local)!;
    expect(problem).toContain(`"${shown}" carries credentials`);
    expect(problem).toContain('agentlab secrets set-git');
    expect(problem).not.toMatch(/s3cret|ghp_token|:p@|:pw@/);
  });
  test('a user name alone is fine over ssh', () => {
    expect(credentialsIn('ssh://git@host/r.git')).toBeUndefined();
    expect(credentialsIn('git@github.com:acme/app.git')).toBeUndefined();
  });
});

describe('a job request from any client', () => {
  const commit = 'a'.repeat(40);
  test('a local repository needs a local-backend profile and a pinned commit', () => {
    const request = { jobId: 'job-1', profile: 'p', task: 't', repo: '/srv/app', ref: 'HEAD', commit };
    expect(jobRequestProblem(request, 'local')).toBeUndefined();
    expect(jobRequestProblem(request, 'proxmox')).toMatch(/repo: .*needs a local-backend profile/);
    expect(jobRequestProblem({ ...request, commit: undefined }, 'local')).toMatch(/commit: .*needs the commit/);
    expect(jobRequestProblem({ ...request, commit: 'abc' }, 'local')).toMatch(/commit: expected a full 40-character/);
    expect(jobRequestProblem({ ...request, repo: 'https://h/r.git' }, 'local')).toMatch(/only a local repository/);
  });
  test('credentials and bad refs are refused whatever the backend', () => {
    const request = { jobId: 'job-1', profile: 'p', task: 't', repo: 'https://u:p@h/r.git' };
    expect(jobRequestProblem(request, 'proxmox')).toMatch(/repo: .*carries credentials/);
    expect(jobRequestProblem({ ...request, repo: 'https://h/r.git', ref: 'a..b' }, 'local')).toMatch(/ref: .*"\.\."/);
  });
});

describe('durations', () => {
  test('parses units and bare minutes', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('120')).toBe(7_200_000);
    expect(parseDuration('1e9')).toBeUndefined();
    expect(parseDuration('3 hours')).toBeUndefined();
    expect(formatDuration(25 * 3_600_000)).toBe('25h');
  });
});

describe('config', () => {
  test('an error names the file and the field', () => {
    expect(() => parseConfig({ guestApi: { listen: 'nowhere' } }, '/etc/agentlab/config.yaml')).toThrow(
      new ConfigError('/etc/agentlab/config.yaml: guestApi.listen: expected host:port'),
    );
    expect(() => parseConfig({ profiles: [{ name: 'p', backend: 'proxmox' }] }, 'c.yaml')).toThrow(
      /c\.yaml: profiles\.0\.templateVmid: required for the proxmox backend/,
    );
    expect(() => parseConfig({ profiles: [{ name: 'p', backend: 'local', ttl: 'soon' }] }, 'c.yaml')).toThrow(
      /profiles\.0\.ttl: "soon" is not a duration/,
    );
    // A setting that no longer does anything says so, rather than being silently ignored.
    expect(() => parseConfig({ local: { repoRoots: ['/srv/repos'] } }, 'c.yaml')).toThrow(
      /c\.yaml: local\.repoRoots: no longer used: a job may name any repository its CLI user can read; remove it/,
    );
  });

  test('embedded defaults carry the seed profiles, the local one and qemu-ephemeral', () => {
    const config = parseConfig({}, 'embedded defaults', {});
    expect([...config.profiles.keys()]).toEqual([
      'yolo-ephemeral',
      'yolo-workspace',
      'interactive-dev',
      'local',
      'qemu-ephemeral',
    ]);
    expect(config.profiles.get('qemu-ephemeral')).toMatchObject({
      backend: 'qemu',
      resources: { cores: 2, memoryMb: 2048, diskGb: 4 },
    });
    expect(config.qemu).toEqual({ accelerator: 'auto' });
    // QEMU VMs reach the guest API on the bridge's gateway, as isolated local sandboxes do.
    const qemuOnly = parseConfig({ worker: { backends: ['qemu'] }, local: { isolation: 'none' } }, 'c.yaml', {});
    expect(qemuOnly.guestApi.url).toBe('http://10.78.0.1:8844');
    expect(() => parseConfig({ qemu: { accelerator: 'hvf' } }, 'c.yaml', {})).toThrow(/c\.yaml: qemu\.accelerator/);
    expect(() => parseConfig({ qemu: { imageDir: 'relative' } }, 'c.yaml', {})).toThrow(/expected an absolute path/);
    expect(config.profiles.get('yolo-ephemeral')).toMatchObject({
      backend: 'proxmox',
      templateVmid: 9000,
      ttl: 3 * 3_600_000,
    });
  });
});

describe('profile agents and secrets', () => {
  const resolved = (profile: Record<string, unknown>) => {
    const config = parseConfig({ profiles: [{ name: 'p', backend: 'local', ...profile }] }, 'c.yaml', {});
    return resolveProfile(config.profiles.get('p')!, 'node1');
  };

  test('an agent kind resolves to its non-interactive command; a command overrides it', () => {
    expect(resolved({}).agentCommand).toBe(AGENT_COMMANDS.claude);
    expect(resolved({ agent: { kind: 'codex' } }).agentCommand).toBe(AGENT_COMMANDS.codex);
    expect(resolved({ agent: { kind: 'opencode' } }).agentCommand).toBe(AGENT_COMMANDS.opencode);
    expect(resolved({ agent: { kind: 'codex', command: 'my-agent' } }).agentCommand).toBe('my-agent');
    expect(() => resolved({ agent: { kind: 'gpt' } })).toThrow(/profiles\.0\.agent\.kind: .*claude.*codex.*opencode/);
  });

  test('a profile names its bundle; only the name travels, and a bad name is refused', () => {
    expect(resolved({ secretsBundle: 'team-a' }).secretsBundle).toBe('team-a');
    expect(resolved({}).secretsBundle).toBeUndefined();
    expect(() => resolved({ secretsBundle: '../etc/passwd' })).toThrow(
      /profiles\.0\.secretsBundle: expected a bundle name/,
    );
  });

  test('resources.diskGb is an optional positive whole number of GiB, named in its errors', () => {
    expect(resolved({ resources: { diskGb: 32 } }).diskGb).toBe(32);
    expect('diskGb' in resolved({})).toBe(false); // the template's size: nothing travels
    for (const [diskGb, message] of [
      [0, 'expected a positive number of GiB'],
      [-8, 'expected a positive number of GiB'],
      [2.5, 'expected a whole number of GiB, e.g. 32'],
      ['32G', 'expected a whole number of GiB, e.g. 32'],
    ] as const) {
      expect(() => resolved({ resources: { diskGb } })).toThrow(
        new ConfigError(`c.yaml: profiles.0.resources.diskGb: ${message}`),
      );
    }
  });
});

describe('ssh.authorizedKeys (public keys for `sandbox ssh`)', () => {
  const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAgentlabTestKeyAgentlabTestKeyAgentlab alice@laptop';
  const RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bob';
  const profileKeys = (raw: Record<string, unknown>, name = 'yolo-ephemeral') =>
    resolveProfile(parseConfig(raw, 'c.yaml', {}).profiles.get(name)!, 'node1').sshAuthorizedKeys;

  test('top-level keys reach every profile; a profile may set its own', () => {
    expect(profileKeys({ ssh: { authorizedKeys: [KEY] } })).toEqual([KEY]);
    expect(profileKeys({ ssh: { authorizedKeys: [KEY] } }, 'local')).toEqual([KEY]);
    const own = { name: 'yolo-ephemeral', backend: 'proxmox', templateVmid: 9000, ssh: { authorizedKeys: [RSA] } };
    expect(profileKeys({ ssh: { authorizedKeys: [KEY] }, profiles: [own] })).toEqual([RSA]);
    expect(profileKeys({})).toBeUndefined(); // nothing travels without keys
  });

  test('each must look like an OpenSSH public key line; the error names the field and the index', () => {
    const message = 'expected an OpenSSH public key line, e.g. "ssh-ed25519 AAAAC3Nza… you@laptop"';
    for (const bad of ['-----BEGIN OPENSSH PRIVATE KEY-----', 'ssh-ed25519', 'AAAAC3Nza', `${KEY}\nssh-rsa AAAA x`]) {
      expect(() => parseConfig({ ssh: { authorizedKeys: [KEY, bad] } }, 'c.yaml', {})).toThrow(
        new ConfigError(`c.yaml: ssh.authorizedKeys.1: ${message}`),
      );
    }
    const profile = { name: 'p', backend: 'local', ssh: { authorizedKeys: ['not a key'] } };
    expect(() => parseConfig({ profiles: [profile] }, 'c.yaml', {})).toThrow(
      new ConfigError(`c.yaml: profiles.0.ssh.authorizedKeys.0: ${message}`),
    );
  });
});

const VALID_REFS = ['main', 'HEAD', 'v1.2.0', 'feature/x', 'refs/heads/main', '0123abcd', 'a'.repeat(40), 'x-1_2'];

const INVALID_REFS: [string, RegExp][] = [
  ['-x', /command-line option/],
  ['--upload-pack=x', /command-line option/],
  ['a b', /whitespace/],
  ['a\u0001b', /control characters/],
  ['HEAD~1', /"~"/],
  ['a^', /"\^"/],
  ['a:b', /":"/],
  ['a?', /"\?"/],
  ['a*', /"\*"/],
  ['a[b', /"\["/],
  ['a\\b', /"\\"/],
  ['refs/heads/../../x', /"\.\."/],
  ['a@{1}', /"@\{"/],
  ['@', /not a valid ref/],
  ['/main', /empty path component/],
  ['main/', /empty path component/],
  ['a//b', /empty path component/],
  ['main.', /ends with "\."/],
  ['.hidden', /starting with "\."/],
  ['feature/.x', /starting with "\."/],
  ['main.lock', /ending with "\.lock"/],
  ['refs/heads/x.lock/y', /ending with "\.lock"/],
  ['', /must not be empty/],
  ['x'.repeat(251), /longer than 250/],
];

describe("git refs (git check-ref-format's rules)", () => {
  test.each(VALID_REFS)('accepts %s', (ref) => {
    expect(refProblem(ref)).toBeUndefined();
    expect(gitRefSchema.safeParse(ref).success).toBe(true);
  });
  test('agree with git itself on every case above that git can judge', async () => {
    const gitAccepts = async (ref: string) =>
      (await execa('git', ['check-ref-format', '--allow-onelevel', ref], { reject: false })).exitCode === 0;
    for (const ref of VALID_REFS) expect({ ref, git: await gitAccepts(ref) }).toEqual({ ref, git: true });
    // git has no opinion on a leading "-" (it reads an option) or on length; those rules are ours.
    for (const [ref] of INVALID_REFS.filter(([r]) => r !== '' && !r.startsWith('-') && r.length <= 250)) {
      expect({ ref, git: await gitAccepts(ref) }).toEqual({ ref, git: false });
    }
  });
  test.each(INVALID_REFS)('rejects %j', (ref, why) => {
    expect(refProblem(ref)).toMatch(why);
    expect(gitRefSchema.safeParse(ref).success).toBe(false);
  });
});
