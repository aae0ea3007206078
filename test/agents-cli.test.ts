// `agentlab agents install | list` and doctor: the pinned agent CLIs in one tools directory, installed
// once (the test run's global setup did it), then instant; a missing one is named with its fix.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import execa from 'execa';
import YAML from 'yaml';
import { AGENT_KINDS, AGENT_PACKAGES } from '../common/agents';
import { parseConfig } from '../common/config';
import { CLI } from './support/stack';

const home = mkdtempSync(join(tmpdir(), 'agentlab-agents-'));
const agentlab = (args: string[], agentsDir: string) => {
  const configPath = join(home, `config-${Buffer.from(agentsDir).toString('hex').slice(-12)}.yaml`);
  writeFileSync(
    configPath,
    YAML.stringify({
      dataDir: join(home, 'data'),
      temporal: { address: '127.0.0.1:1' },
      local: { isolation: 'none' },
      agents: { dir: agentsDir },
    }),
  );
  return execa(process.execPath, [CLI, ...args], {
    env: { ...process.env, AGENTLAB_CONFIG: configPath },
    reject: false,
  });
};

describe('agentlab agents', () => {
  const installed = parseConfig({}, 'embedded defaults', {}).agents.dir;

  test('a second install is instant and changes nothing; list shows the pinned versions', async () => {
    const again = await agentlab(['agents', 'install', '--json'], installed);
    expect(again.exitCode).toBe(0);
    const doc = JSON.parse(again.stdout) as { installedNow: boolean; seconds: number };
    expect(doc.installedNow).toBe(false);
    const list = JSON.parse((await agentlab(['agents', 'list', '--json'], installed)).stdout) as {
      agents: { kind: string; pinned: string; installed: string | null }[];
    };
    expect(list.agents).toEqual(
      AGENT_KINDS.map((kind) =>
        expect.objectContaining({
          kind,
          pinned: AGENT_PACKAGES[kind].version,
          installed: AGENT_PACKAGES[kind].version,
        }),
      ),
    );
    // Each binary really runs (what the sandbox puts on its PATH).
    for (const kind of AGENT_KINDS) {
      const { stdout } = await execa(join(installed, 'node_modules', '.bin', AGENT_PACKAGES[kind].bin), ['--version']);
      expect(stdout).toContain(AGENT_PACKAGES[kind].version);
    }
  });

  test('doctor names a missing agent and the command that installs it', async () => {
    const result = await agentlab(['doctor', '--json'], join(home, 'empty-tools'));
    const checks = JSON.parse(result.stdout).checks as { name: string; status: string; detail: string; fix?: string }[];
    const claude = checks.find((c) => c.name === 'agent claude')!;
    // The embedded `local` profile runs Claude Code: without it, that profile cannot work.
    expect(claude).toMatchObject({ status: 'fail', fix: 'agentlab agents install' });
    expect(claude.detail).toContain(`@anthropic-ai/claude-code ${AGENT_PACKAGES.claude.version} is not installed`);
    expect(checks.find((c) => c.name === 'agent codex')).toMatchObject({ status: 'warn' });
    const ok = JSON.parse((await agentlab(['doctor', '--json'], installed)).stdout).checks as {
      name: string;
      status: string;
    }[];
    for (const kind of AGENT_KINDS) expect(ok.find((c) => c.name === `agent ${kind}`)).toMatchObject({ status: 'ok' });
  });
});
