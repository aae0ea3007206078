// Which process holds a TCP port, for "address already in use" errors: the listening socket's inode in
// /proc/net/tcp{,6}, then the process with an fd on that socket. Linux; whatever cannot be read
// (another user's processes without root, another network namespace) just leaves the holder unknown.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface PortHolder {
  pid: number;
  command: string;
}

const LISTEN = '0A';

function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    // sl local_address(HEXIP:HEXPORT) rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [localPort, state, inode] = [fields[1]?.split(':')[1], fields[3], fields[9]];
      if (state === LISTEN && localPort && parseInt(localPort, 16) === port && inode && inode !== '0')
        inodes.add(inode);
    }
  }
  return inodes;
}

function readDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export function portHolder(port: number): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  for (const pid of readDir('/proc').filter((entry) => /^\d+$/.test(entry))) {
    for (const fd of readDir(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        let command = '?';
        try {
          command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          // it exited meanwhile: the pid is still the best answer
        }
        return { pid: Number(pid), command };
      }
    }
  }
  return undefined;
}

/** The port an "address already in use" error line names (Go's and Node's wording), if any. */
export function portInUse(errorLine: string): number | undefined {
  if (!/address already in use|EADDRINUSE/i.test(errorLine)) return undefined;
  const ports = [...errorLine.matchAll(/[\d\]]:(\d{1,5})\b/g)].map((m) => Number(m[1]));
  return ports.at(-1);
}
