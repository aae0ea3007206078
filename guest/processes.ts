// Processes: Linux /proc where available (it tells zombies and reused pids apart from live agents),
// and stopping a process group for good.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const KILL_GRACE_MS = 5000;

export interface ProcStat {
  state: string | undefined;
  pgrp: number;
  startTime: string | undefined;
}

/** { state, pgrp, startTime } of a pid, or undefined if there is no such process (or no /proc). */
export function procStat(pid: number | string): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // the command name may hold spaces
  return { state: fields[0], pgrp: Number(fields[2]), startTime: fields[19] };
}

const hasProc = (): boolean => fs.existsSync('/proc/self/stat');

export function processRunning(pid: number, startTime: string | undefined): boolean {
  if (!hasProc()) {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  const stat = procStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** Whether any live (non-zombie) process is left in the process group. */
function groupRunning(pgid: number): boolean {
  if (!hasProc()) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

/** SIGTERM the group, SIGKILL it after the grace period, and wait until it is gone. */
export async function stopGroup(pgid: number): Promise<void> {
  if (!groupRunning(pgid)) return;
  signalGroup(pgid, 'SIGTERM');
  const killAt = Date.now() + KILL_GRACE_MS;
  while (groupRunning(pgid) && Date.now() < killAt) await sleep(100);
  if (!groupRunning(pgid)) return;
  signalGroup(pgid, 'SIGKILL');
  const giveUpAt = Date.now() + KILL_GRACE_MS;
  while (groupRunning(pgid) && Date.now() < giveUpAt) await sleep(100);
}
