// The agents' tools directory: the pinned agent CLIs installed once with npm, shown read-only to every
// local sandbox on its PATH (and the same versions baked into the Proxmox template).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import { AGENT_KINDS, AGENT_PACKAGES, type AgentKind } from './agents';

/** Where a sandbox sees the tools directory, whatever its path on the host. */
export const SANDBOX_AGENTS_DIR = '/opt/agentlab/agents';

/** The directory a sandbox puts first on its PATH, given where the tools directory is. */
export const agentsBinDir = (agentsDir: string): string => join(agentsDir, 'node_modules', '.bin');

export interface InstalledAgent {
  kind: AgentKind;
  package: string;
  pinned: string;
  /** The version installed, or null when the agent is missing. */
  installed: string | null;
}

/** Written once every binary answered `--version`: what is installed, read without starting anything. */
const INSTALLED_MARKER = 'installed.json';

const pinnedVersions = (): Record<string, string> =>
  Object.fromEntries(AGENT_KINDS.map((kind) => [kind, AGENT_PACKAGES[kind].version]));

export async function listAgents(agentsDir: string): Promise<InstalledAgent[]> {
  const marker = await fs
    .readFile(join(agentsDir, INSTALLED_MARKER), 'utf8')
    .then((text) => JSON.parse(text) as Record<string, string>)
    .catch(() => ({}) as Record<string, string>);
  const present = async (kind: AgentKind) =>
    fs.access(join(agentsBinDir(agentsDir), AGENT_PACKAGES[kind].bin)).then(
      () => true,
      () => false,
    );
  return Promise.all(
    AGENT_KINDS.map(async (kind) => ({
      kind,
      package: AGENT_PACKAGES[kind].name,
      pinned: AGENT_PACKAGES[kind].version,
      installed: (await present(kind)) ? (marker[kind] ?? null) : null,
    })),
  );
}

/** `agentlab agents install` — the command a missing agent's error names. */
export const AGENTS_INSTALL_COMMAND = 'agentlab agents install';

/**
 * Installs the pinned versions into `agentsDir` with npm, unless they are there already (then it
 * returns at once). Returns whether npm ran.
 */
export async function installAgents(
  agentsDir: string,
  onProgress: (line: string) => void = () => undefined,
): Promise<boolean> {
  const agents = await listAgents(agentsDir);
  if (agents.every((a) => a.installed === a.pinned)) return false;
  await fs.mkdir(agentsDir, { recursive: true });
  await fs.rm(join(agentsDir, INSTALLED_MARKER), { force: true });
  const dependencies = Object.fromEntries(AGENT_KINDS.map((k) => [AGENT_PACKAGES[k].name, AGENT_PACKAGES[k].version]));
  await fs.writeFile(
    join(agentsDir, 'package.json'),
    JSON.stringify({ name: 'agentlab-agents', private: true, dependencies }, null, 2) + '\n',
  );
  onProgress(
    `installing ${AGENT_KINDS.map((k) => `${AGENT_PACKAGES[k].name}@${AGENT_PACKAGES[k].version}`).join(', ')} into ${agentsDir}`,
  );
  // npm's install-script policy differs between versions and machines (npm 11 warns, later ones refuse):
  // install without scripts, then run the agents' own postinstall, which only links the binary that the
  // platform package brought (no download), and nothing else's.
  await execa('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=dev', '--loglevel=error'], {
    cwd: agentsDir,
  });
  for (const kind of AGENT_KINDS) {
    const packageDir = join(agentsDir, 'node_modules', AGENT_PACKAGES[kind].name);
    const manifest = JSON.parse(await fs.readFile(join(packageDir, 'package.json'), 'utf8')) as {
      scripts?: { postinstall?: string };
    };
    if (manifest.scripts?.postinstall) await execa('sh', ['-c', manifest.scripts.postinstall], { cwd: packageDir });
  }
  // Each binary must really run here before the directory counts as installed.
  for (const kind of AGENT_KINDS) {
    const bin = join(agentsBinDir(agentsDir), AGENT_PACKAGES[kind].bin);
    const { stdout } = await execa(bin, ['--version'], { timeout: 60_000 }).catch((err: execa.ExecaError) => {
      throw new Error(
        `${AGENT_PACKAGES[kind].name} was installed but \`${bin} --version\` failed: ${err.shortMessage}`,
      );
    });
    if (!stdout.includes(AGENT_PACKAGES[kind].version)) {
      throw new Error(`${bin} --version says ${JSON.stringify(stdout)}, not ${AGENT_PACKAGES[kind].version}`);
    }
  }
  await fs.writeFile(join(agentsDir, INSTALLED_MARKER), JSON.stringify(pinnedVersions()) + '\n');
  return true;
}
