// How each known agent CLI runs unattended: its command line, the keys it needs, and the config and
// environment that keep it non-interactive, quiet (no update checks, telemetry or plugin downloads) and
// pointed at the model API its secrets name. The runner ships its compiled copy beside itself; the host reads it
// for `profile show` and the keys check, the model API tests for their direct runs.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type AgentKind = 'claude' | 'codex' | 'opencode';
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}
export interface PrepareOptions {
  home: string;
  env: Record<string, string>;
  model?: string;
  maxRetries?: number;
  asRoot?: boolean;
}

/**
 * One event of an agent CLI's JSON-lines output. Their shapes are the CLIs' own and change between
 * versions: every read below checks what it finds, so `any` stands for "whatever the CLI printed".
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AgentEvent = any;

interface AgentRecipe {
  title: string;
  bin: string;
  command: string;
  keys: string[];
  prepare(o: PrepareOptions): Record<string, string>;
  usage(log: string): TokenUsage | undefined;
  error(log: string): string | undefined;
}

/** The model Codex is told when the profile names none and a model API of our own is used: one its catalogue knows. */
const CODEX_DEFAULT_CUSTOM_MODEL = 'gpt-5.5';

function writePrivate(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, content, { mode: 0o600 });
}

/** The lines of an agent's JSON-lines output that parse, skipping the rest (stderr shares the log). */
function jsonLines(text: string): AgentEvent[] {
  const events: AgentEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line));
    } catch {
      /* not one of the agent's events */
    }
  }
  return events;
}

const AGENTS: Record<AgentKind, AgentRecipe> = {
  claude: {
    title: 'Claude Code',
    bin: 'claude',
    /** The task arrives on stdin; stream-json: one event a line, the first naming the version, the last the usage. */
    command: 'claude -p --dangerously-skip-permissions --output-format stream-json --verbose',
    keys: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN'],
    prepare(o) {
      return {
        CLAUDE_CONFIG_DIR: path.join(o.home, '.claude'),
        // Nothing but the model API: no telemetry, error reporting or update checks.
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
        ...(o.model ? { ANTHROPIC_MODEL: o.model } : {}),
        ...(o.maxRetries === undefined ? {} : { CLAUDE_CODE_MAX_RETRIES: String(o.maxRetries) }),
        // It refuses --dangerously-skip-permissions as root unless told it is in a sandbox (only without an agent user).
        ...(o.asRoot ? { IS_SANDBOX: '1' } : {}),
      };
    },
    usage(log) {
      const result = jsonLines(log)
        .filter((e) => e && e.type === 'result' && e.usage)
        .pop();
      if (!result) return undefined;
      const u = result.usage;
      const input = (u.input_tokens || 0) + (u.cache_creation_input_tokens || 0) + (u.cache_read_input_tokens || 0);
      return { inputTokens: input, outputTokens: u.output_tokens || 0 };
    },
    error(log) {
      const result = jsonLines(log)
        .filter((e) => e && e.type === 'result' && e.is_error)
        .pop();
      if (!result || typeof result.result !== 'string') return undefined;
      return result.api_error_status ? `${result.result} (HTTP ${result.api_error_status})` : result.result;
    },
  },

  codex: {
    title: 'Codex',
    bin: 'codex',
    command: 'codex exec --dangerously-bypass-approvals-and-sandbox --skip-git-repo-check --json -',
    keys: ['OPENAI_API_KEY', 'CODEX_API_KEY'],
    prepare(o) {
      const codexHome = path.join(o.home, '.codex');
      const baseUrl = o.env.OPENAI_BASE_URL;
      const retries = o.maxRetries ?? 4;
      const model = o.model || (baseUrl ? CODEX_DEFAULT_CUSTOM_MODEL : undefined);
      // This version ignores OPENAI_BASE_URL: a provider of our own is how it talks to another endpoint.
      // `plugins = false` stops the plugin sync (github.com, chatgpt.com); no update check, no analytics.
      const lines = [
        ...(model ? [`model = ${JSON.stringify(model)}`] : []),
        ...(baseUrl ? ['model_provider = "agentlab"'] : []),
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
      ];
      if (baseUrl) {
        lines.push(
          '[model_providers.agentlab]',
          'name = "model API from the secrets bundle"',
          `base_url = ${JSON.stringify(baseUrl)}`,
          `env_key = ${JSON.stringify(o.env.OPENAI_API_KEY ? 'OPENAI_API_KEY' : 'CODEX_API_KEY')}`,
          'wire_api = "responses"',
          `request_max_retries = ${retries}`,
          `stream_max_retries = ${retries}`,
          'supports_websockets = false',
          '',
        );
      }
      writePrivate(path.join(codexHome, 'config.toml'), lines.join('\n'));
      return { CODEX_HOME: codexHome };
    },
    usage(log) {
      const turns = jsonLines(log).filter((e) => e && e.type === 'turn.completed' && e.usage);
      if (turns.length === 0) return undefined;
      return {
        inputTokens: turns.reduce((sum, e) => sum + (e.usage.input_tokens || 0), 0),
        outputTokens: turns.reduce((sum, e) => sum + (e.usage.output_tokens || 0), 0),
      };
    },
    error(log) {
      const events = jsonLines(log);
      const failed = events.filter((e) => e && e.type === 'turn.failed' && e.error).pop();
      if (failed && typeof failed.error.message === 'string') return failed.error.message;
      const error = events.filter((e) => e && e.type === 'error' && typeof e.message === 'string').pop();
      return error ? error.message : undefined;
    },
  },

  opencode: {
    title: 'OpenCode',
    bin: 'opencode',
    command: 'opencode run --format json --print-logs --log-level WARN "$(cat "$AGENTLAB_TASK_FILE")"',
    keys: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'OPENROUTER_API_KEY'],
    prepare(o) {
      const xdg = (name: string): string => path.join(o.home, name);
      const configDir = path.join(xdg('.config'), 'opencode');
      // It installs a plugin package into its config dir in the background: offline, npm gives up at once.
      writePrivate(path.join(configDir, '.npmrc'), 'offline=true\n');
      const baseUrl = o.env.OPENAI_BASE_URL;
      const config: Record<string, unknown> = {
        $schema: 'https://opencode.ai/config.json',
        autoupdate: false,
        share: 'disabled',
        permission: { edit: 'allow', bash: 'allow', webfetch: 'allow' },
      };
      if (baseUrl) {
        // An OpenAI-compatible endpoint from the bundle becomes a provider of its own, the only one enabled.
        const model = o.model || 'default';
        Object.assign(config, {
          model: `agentlab/${model}`,
          small_model: `agentlab/${model}`,
          enabled_providers: ['agentlab'],
          provider: {
            agentlab: {
              npm: '@ai-sdk/openai-compatible',
              name: 'model API from the secrets bundle',
              options: { baseURL: baseUrl, apiKey: '{env:OPENAI_API_KEY}' },
              models: { [model]: { name: model, tool_call: true } },
            },
          },
        });
      } else if (o.model) {
        config.model = o.model;
      }
      const configFile = path.join(configDir, 'agentlab.json');
      writePrivate(configFile, JSON.stringify(config, null, 2) + '\n');
      return {
        XDG_CONFIG_HOME: xdg('.config'),
        XDG_DATA_HOME: xdg('.local/share'),
        XDG_CACHE_HOME: xdg('.cache'),
        XDG_STATE_HOME: xdg('.local/state'),
        OPENCODE_CONFIG: configFile,
        // Without these it fetches models.dev, checks for updates and downloads plugins and LSPs at start.
        OPENCODE_DISABLE_MODELS_FETCH: '1',
        OPENCODE_DISABLE_AUTOUPDATE: '1',
        OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
        OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
        OPENCODE_DISABLE_SHARE: '1',
      };
    },
    usage(log) {
      const steps = jsonLines(log).filter((e) => e && e.type === 'step_finish' && e.part && e.part.tokens);
      if (steps.length === 0) return undefined;
      return {
        inputTokens: steps.reduce((sum, e) => sum + (e.part.tokens.input || 0), 0),
        outputTokens: steps.reduce((sum, e) => sum + (e.part.tokens.output || 0), 0),
      };
    },
    error(log) {
      const event = jsonLines(log)
        .filter((e) => e && e.type === 'error' && e.error)
        .pop();
      if (!event) return undefined;
      const data = event.error.data || {};
      const message = typeof data.message === 'string' ? data.message : event.error.name;
      return data.statusCode ? `${message} (HTTP ${data.statusCode})` : message;
    },
  },
};

export const AGENT_KINDS: AgentKind[] = ['claude', 'codex', 'opencode'];

export const isAgentKind = (kind: unknown): kind is AgentKind =>
  typeof kind === 'string' && AGENT_KINDS.includes(kind as AgentKind);

/** The shell command line the runner hands to `sh -c` (the task file is its stdin). */
export const agentCommand = (kind: AgentKind): string => AGENTS[kind].command;

/** Why the agent cannot start with these secrets, naming what it needs; undefined when a key is there. */
export function missingKeyProblem(
  kind: AgentKind,
  env: Record<string, string>,
  bundle: string | undefined,
): string | undefined {
  const { title, keys } = AGENTS[kind];
  if (keys.some((key) => typeof env[key] === 'string' && env[key] !== '')) return undefined;
  const where = bundle
    ? `the secrets bundle ${JSON.stringify(bundle)} has none of them (agentlab secrets set-env --bundle ${bundle} --name ${keys[0]} --value-file <file>)`
    : 'the profile names no secrets bundle (set secretsBundle, then agentlab secrets set-env)';
  return `${title} needs ${keys.join(' or ')}: ${where}`;
}

/** Writes the agent's config under `home` and returns the environment it runs with, beside the secrets. */
export function prepareAgent(kind: AgentKind, options: PrepareOptions): Record<string, string> {
  fs.mkdirSync(options.home, { recursive: true, mode: 0o700 });
  return AGENTS[kind].prepare(options);
}

export const agentUsage = (kind: AgentKind, log: string): TokenUsage | undefined => AGENTS[kind].usage(log);

/** The agent's own account of why it failed (an API's 401, 429 or 5xx), from its output. */
export const agentError = (kind: AgentKind, log: string): string | undefined => AGENTS[kind].error(log);

export const agentBin = (kind: AgentKind): string => AGENTS[kind].bin;

export const agentTitle = (kind: AgentKind): string => AGENTS[kind].title;
