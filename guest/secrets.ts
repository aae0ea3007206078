// Secrets on the tmpfs: an env file, git credentials, agent settings. Wiped once the agent is done.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GuestSecrets } from '../common/contract';
import { PermanentError } from './errors';
import { ensurePrivateDir, readJsonFile, writeFileAtomic, writeJsonFile } from './files';

const shellQuote = (text: string): string => `'${String(text).replace(/'/g, `'\\''`)}'`;

/** What the runner keeps for itself in the secrets dir; everything the agent may read is in `agent/`. */
const SECRET_FILES = ['agent', 'redact.json'];

export interface AgentUser {
  name: string;
  uid: number;
  gid: number;
}

/** The unprivileged account the agent runs as, from /etc/passwd (the runner itself stays root). */
export function lookupAgentUser(name: string): AgentUser {
  const entry = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === name);
  if (!entry) throw new PermanentError(`the agent user ${JSON.stringify(name)} is not in /etc/passwd`);
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0)
    throw new PermanentError(`the agent user ${JSON.stringify(name)} must be an unprivileged account`);
  return { name, uid, gid };
}

/**
 * The agent's own private directory on the secrets tmpfs: its home (config of the agent CLIs), the
 * task, and the secret files it may read. Owned by the agent user, so nothing else of the runner's is.
 */
export function prepareAgentDir(secretsDir: string, agentUser: AgentUser | undefined): string {
  const dir = path.join(secretsDir, 'agent');
  ensurePrivateDir(dir);
  ensurePrivateDir(path.join(dir, 'home'));
  if (agentUser) {
    // The agent must reach its directory through the secrets dir, without listing or reading the rest.
    fs.chmodSync(secretsDir, 0o711);
    chownTree(dir, agentUser);
  }
  return dir;
}

export function chownTree(target: string, user: AgentUser): void {
  fs.lchownSync(target, user.uid, user.gid);
  if (!fs.lstatSync(target).isDirectory()) return;
  for (const name of fs.readdirSync(target)) chownTree(path.join(target, name), user);
}

/** The environment the secrets give: all of it for the agent, `gitAuth` for the runner's git too. */
export interface SecretEnv {
  env: Record<string, string>;
  gitAuth: Record<string, string>;
  envFile: string | undefined;
}

/**
 * Writes the bundle's content as files under `dir` (0700 dirs, 0600 files) and returns the environment
 * the agent and git get. Idempotent: a restarted runner rewrites the same files.
 */
export function materializeSecrets(dir: string, secrets: GuestSecrets | null): SecretEnv {
  const file = (name: string): string => path.join(dir, name);
  const env: Record<string, string> = {};
  const gitAuth: Record<string, string> = {};
  if (!secrets) return { env, gitAuth, envFile: undefined };
  const envLines = Object.entries(secrets.env || {}).map(([name, value]) => `export ${name}=${shellQuote(value)}`);
  writeFileAtomic(file('agent.env'), envLines.join('\n') + (envLines.length ? '\n' : ''));
  Object.assign(env, secrets.env || {});

  const git = secrets.git || {};
  if (git.token) {
    writeFileAtomic(file('git-token'), git.token);
    writeFileAtomic(file('git-username'), git.username || 'x-access-token');
    // git asks "Username for ...:" then "Password for ...:"; the answers come from files, never argv or env.
    const askpass = [
      '#!/bin/sh',
      `case "$1" in Username*) exec cat ${shellQuote(file('git-username'))} ;; esac`,
      `exec cat ${shellQuote(file('git-token'))}`,
      '',
    ].join('\n');
    writeFileAtomic(file('git-askpass'), askpass, 0o700);
    gitAuth.GIT_ASKPASS = file('git-askpass');
  }
  if (git.sshPrivateKey) {
    ensurePrivateDir(file('ssh'));
    const key = path.join(file('ssh'), 'id');
    const knownHosts = path.join(file('ssh'), 'known_hosts');
    const pinnedHosts = git.knownHosts ?? ''; // the host requires it with a key (common/secrets.ts)
    writeFileAtomic(key, git.sshPrivateKey.endsWith('\n') ? git.sshPrivateKey : `${git.sshPrivateKey}\n`);
    writeFileAtomic(knownHosts, pinnedHosts.endsWith('\n') ? pinnedHosts : `${pinnedHosts}\n`);
    gitAuth.GIT_SSH_COMMAND = [
      'ssh',
      `-i ${shellQuote(key)}`,
      '-o IdentitiesOnly=yes',
      '-o StrictHostKeyChecking=yes',
      `-o UserKnownHostsFile=${shellQuote(knownHosts)}`,
      '-o BatchMode=yes',
    ].join(' ');
  }
  const settings = secrets.agent && secrets.agent.claudeSettingsJson;
  if (settings) {
    ensurePrivateDir(file('claude'));
    writeFileAtomic(path.join(file('claude'), 'settings.json'), settings);
    env.CLAUDE_CONFIG_DIR = file('claude');
  }
  return { env: { ...env, ...gitAuth }, gitAuth, envFile: file('agent.env') };
}

/** Removes every secret file and the bundle from the stored claim; the credential stays for delivery. */
export function wipeSecrets(dir: string, claimFile: string): void {
  for (const name of SECRET_FILES) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  const claim = readJsonFile<{ secrets?: unknown }>(claimFile);
  if (claim && claim.secrets) writeJsonFile(claimFile, { ...claim, secrets: null, secretsWiped: true });
}
