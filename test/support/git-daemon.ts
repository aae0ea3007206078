// Serves a directory's repositories over git:// on loopback: what a remote repository is to a Proxmox guest.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { basename, dirname } from 'node:path';
import { eventually, freePort } from './stack';

export interface GitDaemon {
  /** git://127.0.0.1:<port>/<name of the repository> */
  url: string;
  close(): Promise<void>;
}

export async function serveRepo(repoDir: string): Promise<GitDaemon> {
  const port = await freePort();
  const base = dirname(repoDir);
  const daemon = spawn(
    'git',
    ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base],
    { stdio: 'ignore' },
  );
  await eventually(
    'git daemon to listen',
    () =>
      new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      }),
    10_000,
  );
  return {
    url: `git://127.0.0.1:${port}/${basename(repoDir)}`,
    close: () =>
      new Promise((resolve) => {
        if (daemon.exitCode !== null) return resolve();
        daemon.once('exit', () => resolve());
        daemon.kill('SIGTERM');
      }),
  };
}
