// `agentlab sandbox ssh`: ssh into a Proxmox sandbox as its agent user.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { GUEST_USER } from '../../../backends/proxmox/snippet';
import type { CliContext } from '../../context';
import { ExitCode, rejected } from '../../errors';
import { printJson } from '../../output';
import { runAction } from '../../run-action';
import { asList, preflight, recordAccess, runAttached } from './access';

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

export interface SshOptions {
  ref: string;
  command: string[];
  dryRun?: boolean;
}

export async function run(opts: SshOptions, ctx: CliContext): Promise<number> {
  const access = await preflight(ctx, opts.ref, 'ssh');
  const { jobId } = access.sandbox;
  const ssh = (address: string | undefined) => {
    if (!address) throw rejected(`sandbox of job ${jobId} has no guest address yet`);
    const { dataDir, ssh: config } = ctx.config;
    return sshCommand({ address, jobId, dataDir, identityFile: config.identityFile, command: opts.command });
  };
  const argv = ssh(access.sandbox.address); // no address, no access to record
  if (opts.dryRun) {
    if (ctx.json) printJson(ctx.io, { jobId, command: argv });
    else ctx.io.out(argv.map(shellQuote).join(' ') + '\n');
    return ExitCode.ok;
  }
  const { address } = await recordAccess(access);
  mkdirSync(ctx.config.dataDir, { recursive: true }); // where known_hosts goes
  return runAttached(ssh(address));
}

export function register(sandbox: Command): void {
  sandbox
    .command('ssh <sandbox> [command...]')
    .description('ssh into a READY or RUNNING Proxmox sandbox as its agent user (keys: config ssh.authorizedKeys)')
    .option('--dry-run', 'print the ssh command line instead of running it (nothing is recorded)')
    .option('--json', 'print one JSON document (with --dry-run)')
    .action(
      runAction((ctx, options: { dryRun?: boolean }, ref: string, command?: string | string[]) =>
        run({ ...options, ref, command: asList(command) }, ctx),
      ),
    );
}
