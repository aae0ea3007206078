// What the scripted model reads from any provider's request, and what it answers, independent of the wire format.
import { AGENT_KINDS, type AgentKind } from '../../common/agents';

export type ApiKind = 'anthropic-messages' | 'openai-responses' | 'openai-chat';

/** A provider's request reduced to what decides the next turn: the model is stateless, like a real one. */
export interface Conversation {
  api: ApiKind;
  /** Which CLI sent it, from its User-Agent; the scripts say `edited by {agent}` with it. */
  agent: AgentKind | 'unknown';
  model: string;
  stream: boolean;
  /** Chat Completions only: the client asked for the final usage chunk (`stream_options.include_usage`). */
  streamUsage?: boolean;
  /** Names of the tools the agent offered in this request. */
  tools: string[];
  /** Those of them that take raw text instead of JSON (the Responses API's `custom` tools, Codex's apply_patch). */
  customTools: string[];
  /** The working directory the agent announced in its prompt (each of the three does). */
  cwd?: string;
  /** Every user-authored text of the conversation, joined: where a task can name its scenario. */
  userText: string;
  /** How many tool calls the assistant already made in the history: the scenario step we are at. */
  toolCallsMade: number;
  /** The output of the latest tool call when the conversation ends with it. */
  lastToolResult?: { text: string; isError?: boolean };
  /** Size of the request, for a plausible input token count. */
  requestChars: number;
}

/** One assistant turn: some text, then at most one tool call (the turn then stops for its result). */
export interface Turn {
  text?: string;
  toolCall?: ToolCall;
}

/** A call of a JSON-schema tool, or of a custom tool with its raw text input. */
export interface ToolCall {
  name: string;
  input: Record<string, unknown> | string;
}

/** The JSON input of a call for APIs without custom tools: raw text goes as `{input}`, as function-style apply_patch takes it. */
export const jsonInput = (call: ToolCall): Record<string, unknown> =>
  typeof call.input === 'string' ? { input: call.input } : call.input;

/** A request the script cannot answer (no matching tool, no working directory): a 400 naming what was missing. */
export class ScenarioError extends Error {}

export function agentFromUserAgent(userAgent: string | undefined): AgentKind | 'unknown' {
  const ua = (userAgent ?? '').toLowerCase();
  // claude-cli/2.1.332, codex_exec/0.171.0, opencode/1.18.33 ai-sdk/… as seen from the pinned versions.
  if (ua.startsWith('claude-cli/')) return 'claude';
  if (ua.startsWith('codex')) return 'codex';
  return AGENT_KINDS.find((kind) => ua.startsWith(`${kind}/`)) ?? 'unknown';
}

// Claude Code: "Primary working directory: /x"; OpenCode: "Working directory: /x"; Codex: "<cwd>/x</cwd>".
const CWD_PATTERNS = [
  /Primary working directory: *([^\s<"\\]+)/,
  /Working directory: *([^\s<"\\]+)/,
  /<cwd>([^<]+)<\/cwd>/,
];

export function findWorkingDirectory(texts: string[]): string | undefined {
  for (const pattern of CWD_PATTERNS) {
    for (const text of texts) {
      const match = pattern.exec(text);
      if (match) return match[1]!.trim();
    }
  }
  return undefined;
}

/** A rough token count (4 characters a token) so that usage figures move with the request's size. */
export const estimateTokens = (chars: number): number => Math.max(1, Math.ceil(chars / 4));

/** Collects the text parts of a content value that is a string or an array of `{type, text}` blocks. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) =>
      part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string'
        ? (part as { text: string }).text
        : '',
    )
    .filter((text) => text !== '')
    .join('\n');
}
