// Turns a scenario action into a call of a tool the agent itself offered, with that tool's own argument names.
import { isAbsolute, join } from 'node:path';
import { ScenarioError, type Conversation, type ToolCall } from './conversation';

export type Action = { writeFile: { path: string; content: string } } | { runCommand: string };

// Argument names as each pinned agent's schema spells them (seen in their requests).
const WRITE_TOOLS: Record<string, (path: string, content: string) => Record<string, unknown>> = {
  Write: (path, content) => ({ file_path: path, content }), // Claude Code
  write: (path, content) => ({ filePath: path, content }), // OpenCode
};

const SHELL_TOOLS: Record<string, (command: string) => Record<string, unknown>> = {
  Bash: (command) => ({ command, description: 'Run the scripted command' }), // Claude Code
  bash: (command) => ({ command }), // OpenCode
  exec_command: (command) => ({ cmd: command }), // Codex (unified exec)
  shell_command: (command) => ({ command }), // Codex, older tool set
  shell: (command) => ({ command: ['bash', '-lc', command] }), // Codex, oldest tool set
};

const shellQuote = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

function offered<T>(table: Record<string, T>, conversation: Conversation): [string, T] | undefined {
  const name = conversation.tools.find((tool) => Object.hasOwn(table, tool));
  return name === undefined ? undefined : [name, table[name]!];
}

function shellCall(command: string, conversation: Conversation): ToolCall {
  const shell = offered(SHELL_TOOLS, conversation);
  if (!shell) {
    throw new ScenarioError(
      `the agent offered no shell tool (${Object.keys(SHELL_TOOLS).join(', ')}); it offered: ${conversation.tools.join(', ')}`,
    );
  }
  return { name: shell[0], input: shell[1](command) };
}

export function toolCallFor(action: Action, conversation: Conversation): ToolCall {
  if ('runCommand' in action) return shellCall(action.runCommand, conversation);
  const { path, content } = action.writeFile;
  const writer = offered(WRITE_TOOLS, conversation);
  if (!writer && conversation.tools.includes('apply_patch')) {
    const patch = addFilePatch(path, content);
    return { name: 'apply_patch', input: conversation.customTools.includes('apply_patch') ? patch : { input: patch } };
  }
  // Codex with a model it has no metadata for offers no file tool at all: it writes files with its shell.
  if (!writer) return shellCall(`printf '%s' ${shellQuote(content)} > ${shellQuote(path)}`, conversation);
  if (isAbsolute(path)) return { name: writer[0], input: writer[1](path, content) };
  // Both write tools want an absolute path: resolve it where the agent said it works, as a model would.
  if (!conversation.cwd) throw new ScenarioError('the request names no working directory to resolve ' + path);
  return { name: writer[0], input: writer[1](join(conversation.cwd, path), content) };
}

/** Codex's patch format (its apply_patch grammar); paths stay relative, as that tool demands. */
function addFilePatch(path: string, content: string): string {
  const lines = content.endsWith('\n') ? content.slice(0, -1).split('\n') : content.split('\n');
  return ['*** Begin Patch', `*** Add File: ${path}`, ...lines.map((line) => `+${line}`), '*** End Patch', ''].join(
    '\n',
  );
}
