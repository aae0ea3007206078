// The QEMU process of one VM, found through its pidfile. A pid is only trusted when /proc shows a QEMU whose
// command line names this VM's directory: after a host reboot or a long outage the number may be anyone's.
import { promises as fs } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../../common/process-alive';

/** Whether `pid` is a QEMU whose arguments name a file in `vmDir`. */
async function isQemuOf(pid: number, vmDir: string): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const [program = '', ...args] = cmdline.split('\0');
  return basename(program).startsWith('qemu-system-') && args.some((arg) => arg.includes(`${vmDir}/`));
}

/** The live QEMU of the VM in `vmDir`, or undefined (no pidfile, a dead pid, or a pid reused by another program). */
export async function runningQemu(pidFile: string, vmDir: string): Promise<number | undefined> {
  const pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return (await isQemuOf(pid, vmDir)) ? pid : undefined;
}

/**
 * Every QEMU of the VM in `vmDir`, found in /proc rather than by the pidfile: what powering off must catch even
 * when the pidfile is gone (removed by hand, or a start that died before QEMU wrote it).
 */
export async function qemuProcessesOf(vmDir: string): Promise<number[]> {
  const pids = (await fs.readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
  const found: number[] = [];
  for (const pid of pids) if (await isQemuOf(pid, vmDir)) found.push(pid);
  return found;
}

/** Powers the VM off: SIGTERM (QEMU exits at once, as on a pulled plug), SIGKILL if it is still there after 5 s. */
export async function killQemu(pid: number): Promise<void> {
  for (const [signal, waitMs] of [
    ['SIGTERM', 5000],
    ['SIGKILL', 5000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return; // already gone
    }
    const deadline = Date.now() + waitMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(50);
    if (!isAlive(pid)) return;
  }
  throw new Error(`QEMU process ${pid} survived SIGKILL`);
}
