// `agentlab secrets init | set-env | unset-env | set-git | show | validate`: age-encrypted bundles on this host.
import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  BUNDLE_NAME_PATTERN,
  ENV_NAME_PATTERN,
  SecretsError,
  bundleFile,
  checkKey,
  emptyBundle,
  initKey,
  listBundles,
  loadBundle,
  redact,
  saveBundle,
  secretsPaths,
  type SecretsBundle,
  type SecretsPaths,
} from '../../common/secrets';
import { CliError, ExitCode, notFound, rejected, usageError } from '../errors';
import { formatTime, printFields, printJson, printTable, progress } from '../output';
import { runAction } from '../run-action';
import type { CliContext } from '../context';
import type { CliIo } from '../io';

/** Maps the module's errors to exit codes: missing → 3, anything refused or broken → 1. */
function secretsAction<O>(action: (ctx: CliContext, options: O, ...positionals: string[]) => Promise<number>) {
  return runAction<O>(async (ctx, options, ...positionals) => {
    try {
      return await action(ctx, options, ...positionals);
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err;
      if (err.kind === 'not_found') throw notFound(err.message);
      throw new CliError(err.message, ExitCode.failed, err.kind === 'permission' ? 'insecure_permissions' : err.kind);
    }
  });
}

function bundleName(value: string | undefined, flag = '--bundle'): string {
  if (value === undefined) throw usageError(`${flag} is required`);
  if (!BUNDLE_NAME_PATTERN.test(value)) {
    throw usageError(`${flag}: "${value}" is not a bundle name: expected [a-z0-9][a-z0-9_-]* (at most 64 characters)`);
  }
  return value;
}

function envName(value: string): string {
  if (!ENV_NAME_PATTERN.test(value)) {
    throw usageError(`--name: "${value}" is not an environment variable name: expected [A-Z_][A-Z0-9_]*`);
  }
  return value;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a secret from a file or `-` (stdin); `trim` drops the one trailing newline editors and echo add. */
async function readSecretFile(flag: string, path: string, trim: boolean): Promise<string> {
  let text: string;
  try {
    text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (trim) text = text.replace(/\r?\n$/, '');
  if (text.length === 0) throw usageError(`${flag}: ${path === '-' ? 'stdin' : path} is empty`);
  return text;
}

/** Command-line values are visible to every local user in `ps` and land in shell history. */
function warnCommandLine(io: CliIo, flag: string, fileFlag: string): void {
  io.err(`warning: ${flag} is visible in \`ps\` and shell history; prefer ${fileFlag} FILE or ${fileFlag} - (stdin)\n`);
}

function exactlyOne(options: Record<string, unknown>, flags: string[]): string {
  const given = flags.filter((f) => options[f] !== undefined);
  const names = flags.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (given.length !== 1) {
    throw usageError(
      given.length === 0 ? `one of ${names.join(', ')} is required` : `${names.join(', ')} are mutually exclusive`,
    );
  }
  return given[0]!;
}

/** A mutation: key checked first, the bundle loaded (or a new one), changed, validated, then written. */
async function update(paths: SecretsPaths, name: string, change: (b: SecretsBundle) => void): Promise<string> {
  checkKey(paths);
  let bundle: SecretsBundle;
  try {
    bundle = await loadBundle(paths, name);
  } catch (err) {
    if (!(err instanceof SecretsError && err.kind === 'not_found')) throw err;
    bundle = emptyBundle();
  }
  change(bundle);
  return saveBundle(paths, name, bundle);
}

function bundleView(name: string, file: string, bundle: SecretsBundle, reveal: boolean) {
  const show = (v: string | undefined) => (v === undefined ? null : reveal ? v : redact(v));
  return {
    bundle: name,
    file,
    revealed: reveal,
    env: Object.fromEntries(Object.entries(bundle.env).map(([k, v]) => [k, show(v)])),
    git: bundle.git
      ? {
          username: bundle.git.username ?? null, // not a secret
          token: show(bundle.git.token),
          sshPrivateKey: show(bundle.git.sshPrivateKey),
          knownHosts: bundle.git.knownHosts ?? null, // public host keys
        }
      : null,
    agent: bundle.agent ? { claudeSettingsJson: show(bundle.agent.claudeSettingsJson) } : null,
  };
}

export function registerSecretsCommands(program: Command): void {
  const secrets = program
    .command('secrets')
    .description('age-encrypted secrets bundles (key: $AGENTLAB_SECRETS_KEY_FILE, dir: $AGENTLAB_SECRETS_DIR)');

  secrets
    .command('init')
    .description('create the age key (mode 0600) that encrypts every bundle')
    .option('--force', 'replace an existing key (bundles encrypted with it become unreadable)')
    .option('--json', 'print one JSON document')
    .action(
      secretsAction<{ force?: boolean }>(async (ctx, options) => {
        const paths = secretsPaths();
        const { publicKey, replaced } = await initKey(paths, options.force === true);
        if (ctx.json) printJson(ctx.io, { keyFile: paths.keyFile, publicKey, replaced, dir: paths.dir });
        else
          printFields(ctx.io, [
            ['keyFile', paths.keyFile],
            ['publicKey', publicKey],
            ['dir', paths.dir],
          ]);
        if (replaced) progress(ctx.io, `replaced ${paths.keyFile}: re-create the bundles encrypted with the old key`);
        return ExitCode.ok;
      }),
    );

  secrets
    .command('set-env')
    .description('set an environment variable in a bundle (created when missing)')
    .option('--bundle <name>', 'bundle name')
    .option('--name <NAME>', 'variable name, [A-Z_][A-Z0-9_]*')
    .option('--value <value>', 'the value (visible in ps: prefer --value-file)')
    .option('--value-file <file>', 'read the value from a file, or - for stdin (one trailing newline dropped)')
    .action(
      secretsAction<{ bundle?: string; name?: string; value?: string; valueFile?: string }>(async (ctx, options) => {
        const bundle = bundleName(options.bundle);
        if (options.name === undefined) throw usageError('--name is required');
        const name = envName(options.name);
        const source = exactlyOne(options, ['value', 'valueFile']);
        if (source === 'value') {
          if (options.value === '') throw usageError('--value must not be empty (unset-env removes a variable)');
          warnCommandLine(ctx.io, '--value', '--value-file');
        }
        const paths = secretsPaths();
        checkKey(paths); // before reading stdin: a refused key must not consume the secret
        const value = options.value ?? (await readSecretFile('--value-file', options.valueFile!, true));
        const file = await update(paths, bundle, (b) => {
          b.env[name] = value;
        });
        progress(ctx.io, `set ${name} in bundle "${bundle}" (${file})`);
        return ExitCode.ok;
      }),
    );

  secrets
    .command('unset-env')
    .description('remove an environment variable from a bundle')
    .option('--bundle <name>', 'bundle name')
    .option('--name <NAME>', 'variable name')
    .action(
      secretsAction<{ bundle?: string; name?: string }>(async (ctx, options) => {
        const bundle = bundleName(options.bundle);
        if (options.name === undefined) throw usageError('--name is required');
        const name = envName(options.name);
        const paths = secretsPaths();
        const loaded = await loadBundle(paths, bundle);
        if (!(name in loaded.env)) throw notFound(`bundle "${bundle}" has no variable ${name}`);
        delete loaded.env[name];
        await saveBundle(paths, bundle, loaded);
        progress(ctx.io, `removed ${name} from bundle "${bundle}"`);
        return ExitCode.ok;
      }),
    );

  secrets
    .command('set-git')
    .description("set the bundle's git credential: a token, or an SSH key with pinned host keys")
    .option('--bundle <name>', 'bundle name')
    .option('--token <token>', 'HTTPS token (visible in ps: prefer --token-file)')
    .option('--token-file <file>', 'read the token from a file, or - for stdin')
    .option('--ssh-key-file <file>', 'SSH private key file (needs --known-hosts-file)')
    .option('--known-hosts-file <file>', 'known_hosts lines for the git hosts')
    .option('--username <user>', 'git username (kept from the bundle when omitted)')
    .action(
      secretsAction<{
        bundle?: string;
        token?: string;
        tokenFile?: string;
        sshKeyFile?: string;
        knownHostsFile?: string;
        username?: string;
      }>(async (ctx, options) => {
        const bundle = bundleName(options.bundle);
        const source = exactlyOne(options, ['token', 'tokenFile', 'sshKeyFile']);
        if (source === 'sshKeyFile' && options.knownHostsFile === undefined) {
          throw usageError('--known-hosts-file is required with --ssh-key-file (pinned host keys)');
        }
        if (source !== 'sshKeyFile' && options.knownHostsFile !== undefined) {
          throw usageError('--known-hosts-file goes only with --ssh-key-file');
        }
        if (options.sshKeyFile === '-' && options.knownHostsFile === '-') {
          throw usageError('--ssh-key-file and --known-hosts-file cannot both read stdin');
        }
        if (options.username !== undefined && !/^[^\s:]+$/.test(options.username)) {
          throw usageError(`--username: "${options.username}" must be non-empty without spaces or ":"`);
        }
        if (source === 'token') {
          if (options.token === '') throw usageError('--token must not be empty');
          warnCommandLine(ctx.io, '--token', '--token-file');
        }
        const paths = secretsPaths();
        checkKey(paths);
        const git: { token?: string; sshPrivateKey?: string; knownHosts?: string } =
          source === 'sshKeyFile'
            ? {
                sshPrivateKey: await readSecretFile('--ssh-key-file', options.sshKeyFile!, false),
                knownHosts: await readSecretFile('--known-hosts-file', options.knownHostsFile!, false),
              }
            : { token: options.token ?? (await readSecretFile('--token-file', options.tokenFile!, true)) };
        if (git.sshPrivateKey !== undefined && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(git.sshPrivateKey)) {
          throw usageError(`--ssh-key-file: ${options.sshKeyFile} is not a private key (no "BEGIN … PRIVATE KEY")`);
        }
        await update(paths, bundle, (b) => {
          const username = options.username ?? b.git?.username;
          b.git = { ...(username ? { username } : {}), ...git };
        });
        progress(ctx.io, `set the git ${source === 'sshKeyFile' ? 'SSH key' : 'token'} of bundle "${bundle}"`);
        return ExitCode.ok;
      }),
    );

  secrets
    .command('show')
    .description('list the bundles, or show one with its values redacted')
    .option('--bundle <name>', 'bundle to show')
    .option('--reveal', 'print the values themselves')
    .option('--json', 'print one JSON document')
    .action(
      secretsAction<{ bundle?: string; reveal?: boolean }>(async (ctx, options) => {
        const paths = secretsPaths();
        if (options.bundle === undefined) {
          const bundles = await Promise.all(
            listBundles(paths).map(async (name) => {
              const st = await stat(bundleFile(paths, name));
              return { name, file: bundleFile(paths, name), modifiedAt: formatTime(st.mtimeMs)!, size: st.size };
            }),
          );
          if (ctx.json) printJson(ctx.io, { keyFile: paths.keyFile, dir: paths.dir, bundles });
          else if (bundles.length === 0) progress(ctx.io, `no bundles in ${paths.dir}`);
          else
            printTable(
              ctx.io,
              ['NAME', 'MODIFIED', 'FILE'],
              bundles.map((b) => [b.name, b.modifiedAt, b.file]),
            );
          return ExitCode.ok;
        }
        const name = bundleName(options.bundle);
        const view = bundleView(name, bundleFile(paths, name), await loadBundle(paths, name), options.reveal === true);
        if (ctx.json) printJson(ctx.io, view);
        else
          printFields(ctx.io, [
            ['bundle', view.bundle],
            ['file', view.file],
            ...Object.entries(view.env).map(([k, v]): [string, string | null] => [`env.${k}`, v]),
            ...(view.git
              ? ([
                  ['git.username', view.git.username],
                  ['git.token', view.git.token],
                  ['git.sshPrivateKey', view.git.sshPrivateKey],
                  [
                    'git.knownHosts',
                    view.git.knownHosts ? `${view.git.knownHosts.trim().split('\n').length} line(s)` : null,
                  ],
                ] as [string, string | null][])
              : []),
            ...(view.agent
              ? ([['agent.claudeSettingsJson', view.agent.claudeSettingsJson]] as [string, string | null][])
              : []),
          ]);
        return ExitCode.ok;
      }),
    );

  secrets
    .command('validate')
    .description('decrypt and validate every bundle (or one); exit 1 naming each problem')
    .option('--bundle <name>', 'bundle to validate')
    .option('--json', 'print one JSON document')
    .action(
      secretsAction<{ bundle?: string }>(async (ctx, options) => {
        const paths = secretsPaths();
        const names = options.bundle === undefined ? listBundles(paths) : [bundleName(options.bundle)];
        checkKey(paths);
        const results: { name: string; ok: boolean; problem: string | null }[] = [];
        for (const name of names) {
          try {
            if (!BUNDLE_NAME_PATTERN.test(name)) throw new Error(`"${name}.age" does not have a valid bundle name`);
            await loadBundle(paths, name);
            results.push({ name, ok: true, problem: null });
          } catch (err) {
            if (options.bundle !== undefined && err instanceof SecretsError && err.kind === 'not_found') throw err;
            results.push({ name, ok: false, problem: (err as Error).message });
          }
        }
        const failed = results.filter((r) => !r.ok);
        if (ctx.json) printJson(ctx.io, { ok: failed.length === 0, bundles: results });
        else {
          for (const r of results) progress(ctx.io, r.ok ? `ok: bundle "${r.name}"` : `problem: ${r.problem}`);
          if (results.length === 0) progress(ctx.io, `no bundles in ${paths.dir}`);
        }
        if (failed.length > 0 && !ctx.json) {
          throw rejected(
            `${failed.length} of ${results.length} bundle(s) failed validation: ${failed.map((r) => r.name).join(', ')}`,
          );
        }
        return failed.length > 0 ? ExitCode.failed : ExitCode.ok;
      }),
    );
}
