// `agentlab job run | cancel | logs | artifacts | diff | apply | show | list`: one file per command.
import type { Command } from 'commander';
import * as apply from './apply';
import * as artifacts from './artifacts';
import * as cancel from './cancel';
import * as diff from './diff';
import * as list from './list';
import * as logs from './logs';
import * as run from './run';
import * as show from './show';

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('run and inspect agent jobs');
  // In this order: it is the order of `agentlab job --help` and of the completion scripts.
  for (const command of [run, cancel, logs, artifacts, diff, apply, show, list]) command.register(job);
}
