// How each real agent CLI runs unattended and fully offline against a model API at a given base URL (this simulator).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentKind } from '../../common/agents';

/** The versions these recipes were worked out and tested with (tool names, requests, messages all change). */
export const VERIFIED_AGENT_VERSIONS: Record<AgentKind, string> = {
  claude: '2.1.332',
  codex: '0.171.0',
  opencode: '1.18.33',
};
export const VERIFIED_AGENT_PACKAGES: Record<AgentKind, string> = {
  claude: `@anthropic-ai/claude-code@${VERIFIED_AGENT_VERSIONS.claude}`,
  codex: `@openai/codex@${VERIFIED_AGENT_VERSIONS.codex}`,
  opencode: `opencode-ai@${VERIFIED_AGENT_VERSIONS.opencode}`,
};

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

/** The model name Codex is told: one its bundled catalogue knows, so it offers its usual tools (apply_patch). */
export const CODEX_MODEL = 'gpt-5.5';

function baseEnv(options: InvocationOptions): Record<string, string> {
  return {
    PATH: options.path ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: options.home,
    LANG: 'C.UTF-8',
    TMPDIR: join(options.home, 'tmp'),
  };
}

function claude(options: InvocationOptions): Invocation {
  return {
    command: join(options.binDir, 'claude'),
    // stream-json: one event a line for the job log; the first names the version, the last the usage and cost.
    args: ['-p', '--dangerously-skip-permissions', '--output-format', 'stream-json', '--verbose'],
    env: {
      ...baseEnv(options),
      ANTHROPIC_BASE_URL: options.baseUrl,
      ANTHROPIC_API_KEY: options.key,
      // Without it Claude Code refuses --dangerously-skip-permissions as root.
      IS_SANDBOX: '1',
      // No telemetry, error reporting, update checks: nothing but the model API (checked in a loopback-only netns).
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CONFIG_DIR: join(options.home, '.claude'),
      ...(options.maxRetries === undefined ? {} : { CLAUDE_CODE_MAX_RETRIES: String(options.maxRetries) }),
    },
    stdin: options.task,
  };
}

function codex(options: InvocationOptions): Invocation {
  const codexHome = join(options.home, '.codex');
  mkdirSync(codexHome, { recursive: true });
  const retries = options.maxRetries ?? 4;
  // OPENAI_BASE_URL is ignored by this version; a provider of our own is the supported way. `plugins = false`
  // stops the curated-plugins sync (github.com, chatgpt.com); the provider has no WebSocket transport.
  const config = [
    `model = "${CODEX_MODEL}"`,
    'model_provider = "agentlab"',
    'check_for_update_on_startup = false',
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[feedback]',
    'enabled = false',
    '',
    '[features]',
    'plugins = false',
    '',
    '[model_providers.agentlab]',
    'name = "agentlab model API"',
    `base_url = ${JSON.stringify(`${options.baseUrl}/v1`)}`,
    'env_key = "OPENAI_API_KEY"',
    'wire_api = "responses"',
    `request_max_retries = ${retries}`,
    `stream_max_retries = ${retries}`,
    'supports_websockets = false',
    '',
  ].join('\n');
  writeFileSync(join(codexHome, 'config.toml'), config);
  return {
    command: join(options.binDir, 'codex'),
    args: ['exec', '--dangerously-bypass-approvals-and-sandbox', '--skip-git-repo-check', '--json', '-'],
    env: { ...baseEnv(options), CODEX_HOME: codexHome, OPENAI_API_KEY: options.key },
    stdin: options.task,
  };
}

function opencode(options: InvocationOptions): Invocation {
  const xdg = (name: string) => join(options.home, name);
  const configDir = join(xdg('.config'), 'opencode');
  mkdirSync(configDir, { recursive: true });
  // OpenCode installs @opencode-ai/plugin into its config dir in the background; offline, npm fails at once
  // instead of asking the registry (the setting stays in that dir: the agent's own npm is untouched).
  writeFileSync(join(configDir, '.npmrc'), 'offline=true\n');
  const config = {
    $schema: 'https://opencode.ai/config.json',
    autoupdate: false,
    share: 'disabled',
    model: 'agentlab/scripted',
    small_model: 'agentlab/scripted',
    enabled_providers: ['agentlab'],
    permission: { edit: 'allow', bash: 'allow' },
    provider: {
      agentlab: {
        npm: '@ai-sdk/openai-compatible',
        name: 'agentlab model API',
        options: { baseURL: `${options.baseUrl}/v1`, apiKey: '{env:AGENTLAB_MODEL_API_KEY}' },
        models: { scripted: { name: 'scripted', tool_call: true } },
      },
    },
  };
  const configFile = join(configDir, 'agentlab.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return {
    command: join(options.binDir, 'opencode'),
    // --print-logs puts its log (version, errors) on stderr; --format json puts one event a line on stdout.
    args: ['run', '--format', 'json', '--print-logs', '--log-level', 'WARN', options.task],
    env: {
      ...baseEnv(options),
      XDG_CONFIG_HOME: xdg('.config'),
      XDG_DATA_HOME: xdg('.local/share'),
      XDG_CACHE_HOME: xdg('.cache'),
      XDG_STATE_HOME: xdg('.local/state'),
      OPENCODE_CONFIG: configFile,
      AGENTLAB_MODEL_API_KEY: options.key,
      // models.dev would be fetched from the Internet at every start without it.
      OPENCODE_DISABLE_MODELS_FETCH: '1',
      OPENCODE_DISABLE_AUTOUPDATE: '1',
      OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
      OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
      OPENCODE_DISABLE_SHARE: '1',
    },
    stdin: '',
  };
}

const BUILDERS: Record<AgentKind, (options: InvocationOptions) => Invocation> = { claude, codex, opencode };

export function agentInvocation(kind: AgentKind, options: InvocationOptions): Invocation {
  mkdirSync(join(options.home, 'tmp'), { recursive: true });
  return BUILDERS[kind](options);
}
