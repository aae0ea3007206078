// The coding agents agentlab knows how to run unattended: their kinds, command lines and pinned packages.
// The recipes live in guest/agents.ts (the runner ships its compiled copy); this is the host's view of them.
import agentPackages from '../guest/agent-packages.json';
import { AGENT_KINDS as KINDS, agentCommand, type AgentKind } from '../guest/agents';

export type { AgentKind };
export const AGENT_KINDS: readonly AgentKind[] = KINDS;

/** Each reads the task without a shell ever parsing it: from stdin, or as one argument from "$(cat …)". */
export const AGENT_COMMANDS: Record<AgentKind, string> = {
  claude: agentCommand('claude'),
  codex: agentCommand('codex'),
  opencode: agentCommand('opencode'),
};

/**
 * The agent CLIs, pinned (npm registry, checked 2026-11-29) in guest/agent-packages.json, which
 * scripts/create_template.sh reads too. Each ships a native binary through an optional per-platform
 * dependency.
 */
export const AGENT_PACKAGES: Record<AgentKind, { name: string; version: string; bin: string }> = agentPackages;
