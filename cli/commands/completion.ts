// `agentlab completion bash|zsh|fish`: shell completion generated from the command tree itself.
import type { Command } from 'commander';
import { ExitCode, usageError } from '../errors';
import { runAction } from '../run-action';

interface Node {
  path: string[];
  subcommands: string[];
  options: string[];
}

function walk(command: Command, path: string[] = []): Node[] {
  const node: Node = {
    path,
    subcommands: command.commands.map((c) => c.name()),
    options: command.options.map((o) => o.long).filter((o): o is string => !!o),
  };
  return [node, ...command.commands.flatMap((c) => walk(c, [...path, c.name()]))];
}

function bash(nodes: Node[]): string {
  const cases = nodes
    .map((n) => `    "${n.path.join(' ')}") words="${[...n.subcommands, ...n.options, '--help'].join(' ')}" ;;`)
    .join('\n');
  return `# agentlab bash completion: eval "$(agentlab completion bash)"
_agentlab() {
  local cur path="" word i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    case " $(_agentlab_words "$path") " in *" $word "*) path="\${path:+$path }$word" ;; esac
  done
  COMPREPLY=($(compgen -W "$(_agentlab_words "$path")" -- "$cur"))
}
_agentlab_words() {
  local words=""
  case "$1" in
${cases}
  esac
  echo "$words"
}
complete -F _agentlab agentlab
`;
}

function fish(nodes: Node[]): string {
  const lines = ['# agentlab fish completion: agentlab completion fish | source', 'complete -c agentlab -f'];
  for (const n of nodes) {
    const condition =
      n.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${n.path[n.path.length - 1]}`;
    if (n.subcommands.length > 0) lines.push(`complete -c agentlab -n '${condition}' -a '${n.subcommands.join(' ')}'`);
    for (const option of n.options)
      lines.push(`complete -c agentlab -n '${condition}' -l ${option.replace(/^--/, '')}`);
  }
  return lines.join('\n') + '\n';
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion <shell>')
    .description('print a shell completion script (bash, zsh or fish)')
    .action(
      runAction(async (ctx, _options, shell: string) => {
        const nodes = walk(program);
        if (shell === 'bash') ctx.io.out(bash(nodes));
        else if (shell === 'zsh')
          ctx.io.out(`# agentlab zsh completion\nautoload -U +X bashcompinit && bashcompinit\n${bash(nodes)}`);
        else if (shell === 'fish') ctx.io.out(fish(nodes));
        else throw usageError(`completion: unknown shell "${shell}" (expected bash, zsh or fish)`);
        return ExitCode.ok;
      }),
    );
}
