// Bad input gets a clear error naming the field: repo URLs, durations, config files.
import { AGENT_COMMANDS } from '../common/agents';
import { parseConfig, ConfigError, resolveProfile } from '../common/config';
import { formatDuration, parseDuration } from '../common/duration';
import { gitRefSchema, repoUrlProblem } from '../common/schemas';

describe('repo URLs', () => {
  test.each([
    'https://github.com/acme/app.git',
    'ssh://git@host/acme/app.git',
    'git://host/app',
    'git@github.com:acme/app.git',
    '/srv/repos/app',
    'file:///srv/repos/app',
    'http://127.0.0.1:8080/app.git',
  ])('accepts %s', (url) => expect(repoUrlProblem(url)).toBeUndefined());
  test.each([
    ['ext::sh -c touch% /tmp/pwned', /remote helper/],
    ['--upload-pack=touch /tmp/pwned', /command-line option/],
    ['fd::17', /remote helper/],
    ['http://insecure.example/app.git', /not a git URL/],
    ['relative/path', /not a git URL/],
    ['', /must not be empty/],
  ])('rejects %s', (url, message) => expect(repoUrlProblem(url)).toMatch(message));
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
  });

  test('embedded defaults carry the seed profiles and the local one', () => {
    const config = parseConfig({}, 'embedded defaults', {});
    expect([...config.profiles.keys()]).toEqual(['yolo-ephemeral', 'yolo-workspace', 'interactive-dev', 'local']);
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
});

describe('git refs', () => {
  test.each(['main', 'v1.2.0', 'feature/x', '0123abcd'])('accepts %s', (ref) => {
    expect(gitRefSchema.safeParse(ref).success).toBe(true);
  });
  test.each(['-x', '--upload-pack=x', 'a b', 'a\u0001b', 'HEAD~1', ''])('rejects %j', (ref) => {
    expect(gitRefSchema.safeParse(ref).success).toBe(false);
  });
});
