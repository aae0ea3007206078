// The QEMU process of one VM, found through its pidfile. A pid is only trusted when /proc shows a QEMU whose
// command line names this VM's directory: after a host reboot or a long outage the number may be anyone's.
import { promises as fs } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The live QEMU of the VM in `vmDir`, or undefined (no pidfile, a dead pid, or a pid reused by another program). */
export async function runningQemu(pidFile: string, vmDir: string): Promise<number | undefined> {
  const pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const [program = '', ...args] = cmdline.split('\0');
  if (!basename(program).startsWith('qemu-system-')) return undefined;
  return args.some((arg) => arg.includes(`${vmDir}/`)) ? pid : undefined;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

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
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (!alive(pid)) return;
  }
  throw new Error(`QEMU process ${pid} survived SIGKILL`);
}
