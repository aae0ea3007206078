// `agentlab sandbox shell | ssh`: a way in for a person. The workflow records who got in (and refuses a
// sandbox that is not up, on the wrong backend or, for shell, on another host) before the CLI enters.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { constants, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { localEntry } from '../../backends/local/entry';
import { GUEST_USER } from '../../backends/proxmox/snippet';
import {
  describeQuery,
  recordAccessUpdate,
  type AccessKind,
  type AccessRequest,
  type JobDescription,
} from '../../common/contract';
import { accessRejection } from '../../common/operator-access';
import { liveHandle, type CliContext } from '../context';
import { ExitCode, rejected } from '../errors';
import { printJson } from '../output';
import { runAction } from '../run-action';

type Handle = Awaited<ReturnType<typeof liveHandle>>;

interface Access {
  handle: Handle;
  sandbox: JobDescription;
  request: AccessRequest;
}

/**
 * The workflow's own rule, read from its state before anything on this side is prepared: a refusal names
 * the state, the backend or the host without recording anything. The Update checks it again, atomically.
 */
async function preflight(ctx: CliContext, ref: string, kind: AccessKind): Promise<Access> {
  const handle = await liveHandle(ctx, ref);
  const sandbox = await handle.query(describeQuery);
  const request = { kind, user: userInfo().username, host: hostname(), node: ctx.config.node };
  const rejection = accessRejection(sandbox, request);
  if (rejection) throw rejected(rejection);
  return { handle, sandbox, request };
}

/** Records the access on the sandbox's timeline; only then does the person get in. */
const recordAccess = ({ handle, request }: Access) => handle.executeUpdate(recordAccessUpdate, { args: [request] });

/** Runs a command with the terminal handed over; resolves to its exit code (128 + signal when killed). */
function runAttached(argv: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  // The terminal's Ctrl-C is for the program inside, not for this CLI.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  return new Promise<number>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', ...(env ? { env } : {}) });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  }).finally(() => process.off('SIGINT', ignore));
}

/** The ssh command line `sandbox ssh` runs: the guest's host key is kept per sandbox, not per (reused) address. */
export function sshCommand(options: {
  address: string;
  jobId: string;
  dataDir: string;
  identityFile?: string;
  command: string[];
}): string[] {
  return [
    'ssh',
    ...['-o', 'StrictHostKeyChecking=accept-new'],
    ...['-o', `UserKnownHostsFile=${join(options.dataDir, 'known_hosts')}`],
    ...['-o', `HostKeyAlias=agentlab-${options.jobId}`],
    ...(options.identityFile ? ['-i', options.identityFile] : []),
    `${GUEST_USER}@${options.address}`,
    ...options.command,
  ];
}

/** POSIX shell quoting, for printing a command line someone may paste. */
const shellQuote = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

/** commander hands a variadic argument over as a list, or undefined when none was given. */
const asList = (value?: string | string[]): string[] => (value === undefined ? [] : [value].flat());

export function registerAccessCommands(sandbox: Command): void {
  sandbox
    .command('shell <sandbox> [command...]')
    .description("enter a READY or RUNNING local sandbox's namespaces as its agent user (on its host, as root)")
    .action(
      runAction(async (ctx, _options, ref: string, command?: string | string[]) => {
        const access = await preflight(ctx, ref, 'shell');
        if (ctx.config.local.isolation === 'none') {
          throw rejected('local.isolation is none: sandboxes are plain processes here, with no namespaces to enter');
        }
        if (process.getuid?.() !== 0) {
          throw rejected("sandbox shell enters the sandbox's namespaces with nsenter, which needs root: use sudo");
        }
        const { vmid } = await recordAccess(access);
        const entry = await localEntry(ctx.config.dataDir, vmid, asList(command), process.env.TERM);
        return runAttached(entry.argv, entry.env);
      }),
    );

  sandbox
    .command('ssh <sandbox> [command...]')
    .description('ssh into a READY or RUNNING Proxmox sandbox as its agent user (keys: config ssh.authorizedKeys)')
    .option('--dry-run', 'print the ssh command line instead of running it (nothing is recorded)')
    .option('--json', 'print one JSON document (with --dry-run)')
    .action(
      runAction(async (ctx, options: { dryRun?: boolean }, ref: string, command?: string | string[]) => {
        const access = await preflight(ctx, ref, 'ssh');
        const { jobId } = access.sandbox;
        const ssh = (address: string | undefined) => {
          if (!address) throw rejected(`sandbox of job ${jobId} has no guest address yet`);
          const { dataDir, ssh: config } = ctx.config;
          return sshCommand({ address, jobId, dataDir, identityFile: config.identityFile, command: asList(command) });
        };
        const argv = ssh(access.sandbox.address); // no address, no access to record
        if (options.dryRun) {
          if (ctx.json) printJson({ jobId, command: argv });
          else process.stdout.write(argv.map(shellQuote).join(' ') + '\n');
          return ExitCode.ok;
        }
        const { address } = await recordAccess(access);
        mkdirSync(ctx.config.dataDir, { recursive: true }); // where known_hosts goes
        return runAttached(ssh(address));
      }),
    );
}
