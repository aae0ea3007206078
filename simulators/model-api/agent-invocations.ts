// A real agent CLI run directly (not in a sandbox) against a model API at a given base URL, with the same
// recipe the guest runner uses (guest/agents.ts): the model API tests and manual trials use it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_PACKAGES, type AgentKind } from '../../common/agents';
import { agentCommand, prepareAgent } from '../../guest/agents';

export interface InvocationOptions {
  /** Directory holding the agents' executables (`claude`, `codex`, `opencode`), e.g. node_modules/.bin. */
  binDir: string;
  /** The model API's base URL without a path, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  key: string;
  /** A private, empty directory for the agent's home, config, caches and session state. */
  home: string;
  task: string;
  /** 0 = no retries of a failed model request where the agent lets us choose (Claude Code, Codex). */
  maxRetries?: number;
  /** PATH for the agent's own shell tool. */
  path?: string;
}

export interface Invocation {
  command: string;
  args: string[];
  /** The whole environment: nothing is inherited, so no other secret reaches the agent. */
  env: Record<string, string>;
  /** Written to the agent's stdin (then closed). */
  stdin: string;
}

/** What a secrets bundle would hold for each agent to use this model API. */
export function modelApiSecrets(kind: AgentKind, baseUrl: string, key: string): Record<string, string> {
  return kind === 'claude'
    ? { ANTHROPIC_BASE_URL: baseUrl, ANTHROPIC_API_KEY: key }
    : { OPENAI_BASE_URL: `${baseUrl}/v1`, OPENAI_API_KEY: key };
}

/** The model each agent is told (Codex: one its catalogue knows, so that it offers apply_patch). */
export const SCRIPTED_MODELS: Record<AgentKind, string | undefined> = {
  claude: undefined,
  codex: 'gpt-5.5',
  opencode: 'scripted',
};

export function agentInvocation(kind: AgentKind, options: InvocationOptions): Invocation {
  mkdirSync(join(options.home, 'tmp'), { recursive: true });
  const taskFile = join(options.home, 'task.txt');
  writeFileSync(taskFile, options.task);
  const secrets = modelApiSecrets(kind, options.baseUrl, options.key);
  const prepared = prepareAgent(kind, {
    home: options.home,
    env: secrets,
    model: SCRIPTED_MODELS[kind],
    maxRetries: options.maxRetries,
    asRoot: process.getuid?.() === 0,
  });
  return {
    command: '/bin/sh',
    args: ['-c', agentCommand(kind)],
    env: {
      PATH: `${options.binDir}:${options.path ?? '/usr/local/bin:/usr/bin:/bin'}`,
      HOME: options.home,
      LANG: 'C.UTF-8',
      TMPDIR: join(options.home, 'tmp'),
      AGENTLAB_TASK_FILE: taskFile,
      ...secrets,
      ...prepared,
    },
    stdin: options.task,
  };
}

export const VERIFIED_AGENT_VERSIONS: Record<AgentKind, string> = {
  claude: AGENT_PACKAGES.claude.version,
  codex: AGENT_PACKAGES.codex.version,
  opencode: AGENT_PACKAGES.opencode.version,
};
