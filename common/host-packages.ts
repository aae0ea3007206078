// Which Debian package provides a host command: read from scripts/host-packages.txt, the one list that
// scripts/ensure-deps.sh installs from, so doctor's fixes name the same packages.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './paths';

export function hostPackageFor(command: string): string {
  const listFile = join(packageRoot(), 'scripts', 'host-packages.txt');
  for (const line of readFileSync(listFile, 'utf8').split('\n')) {
    if (line.startsWith('#')) continue;
    const [, listed, pkg] = line.trim().split(/\s+/);
    if (listed === command && pkg) return pkg;
  }
  throw new Error(`${listFile} names no package for the command ${command}`);
}
