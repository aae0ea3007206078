// The coding agents agentlab knows how to run unattended. Each reads the task without a shell ever parsing
// it: from stdin (the runner feeds the task file there) or as one argument from "$(cat …)".
import agentPackages from '../guest/agent-packages.json';

export const AGENT_KINDS = ['claude', 'codex', 'opencode'] as const;
export type AgentKind = (typeof AGENT_KINDS)[number];

export const AGENT_COMMANDS: Record<AgentKind, string> = {
  claude: 'claude -p --dangerously-skip-permissions',
  codex: 'codex exec --dangerously-bypass-approvals-and-sandbox -',
  opencode: 'opencode run "$(cat "$AGENTLAB_TASK_FILE")"',
};

/**
 * The agent CLIs, pinned (npm registry, checked 2026-11-29) in guest/agent-packages.json, which
 * scripts/create_template.sh reads too. Each ships a native binary through an optional per-platform
 * dependency.
 */
export const AGENT_PACKAGES: Record<AgentKind, { name: string; version: string; bin: string }> = agentPackages;
