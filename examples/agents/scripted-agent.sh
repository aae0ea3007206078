#!/bin/sh
# A deterministic stand-in for an AI agent (demo and tests): reads the task, edits the repo, reports progress.
# SCRIPTED_AGENT_SLEEP=N waits N seconds before finishing; SCRIPTED_AGENT_EXIT=N exits with N.
set -eu

# printf, not echo: dash's echo would interpret backslashes in the task.
task=$(cat "${AGENTLAB_TASK_FILE:?AGENTLAB_TASK_FILE is not set}")
printf '%s\n' "scripted-agent: starting in $(pwd)"
printf '%s\n' "scripted-agent: task: $task"

printf '\n%s\n' "Agent note: $task" >> README.md
printf '%s\n' '# Notes from the scripted agent' '' "Task: $task" > NOTES.md
printf '%s\n' 'scripted-agent: edited README.md and created NOTES.md'
printf '%s\n' 'scripted-agent: a line on stderr' >&2

if [ -n "${SCRIPTED_AGENT_SLEEP:-}" ]; then
  printf '%s\n' "scripted-agent: sleeping ${SCRIPTED_AGENT_SLEEP}s"
  sleep "$SCRIPTED_AGENT_SLEEP"
fi
printf '%s\n' 'scripted-agent: done'
exit "${SCRIPTED_AGENT_EXIT:-0}"
