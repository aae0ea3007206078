// `agentlab sandbox new | list | show | destroy | stop | start | revert | snapshot | shell | ssh | reconcile |
// prune | lease renew`: one file per command.
import type { Command } from 'commander';
import * as destroy from './destroy';
import * as list from './list';
import * as leaseRenew from './lease-renew';
import * as newSandbox from './new';
import * as power from './power';
import * as prune from './prune';
import * as reconcile from './reconcile';
import * as revert from './revert';
import * as shell from './shell';
import * as show from './show';
import * as snapshotList from './snapshot-list';
import * as snapshotRestore from './snapshot-restore';
import * as snapshotSave from './snapshot-save';
import * as ssh from './ssh';

export function registerSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('manage sandboxes (by VMID or job id)');
  // In this order: it is the order of `agentlab sandbox --help` and of the completion scripts.
  for (const command of [newSandbox, list, show, destroy, power, revert]) command.register(sandbox);
  const snapshot = sandbox.command('snapshot').description("save, list and restore a sandbox's own snapshots");
  for (const command of [snapshotSave, snapshotList, snapshotRestore]) command.register(snapshot);
  for (const command of [shell, ssh, reconcile, prune, leaseRenew]) command.register(sandbox);
}
