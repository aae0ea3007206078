// Whether a process is there: signal 0 checks without delivering anything (a pid we may not signal counts as gone).
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
