#!/bin/sh
# A deterministic stand-in for an AI agent: reads the task, edits the repository, reports progress.
# SCRIPTED_AGENT_SLEEP=N waits N seconds before finishing; SCRIPTED_AGENT_EXIT=N exits with N.
set -eu

task=$(cat "${AGENTLAB_TASK_FILE:?AGENTLAB_TASK_FILE is not set}")
echo "scripted-agent: starting in $(pwd)"
echo "scripted-agent: task: $task"

printf '\n%s\n' "Agent note: $task" >> README.md
cat > NOTES.md <<NOTES
# Notes from the scripted agent

Task: $task
NOTES
echo "scripted-agent: edited README.md and created NOTES.md"
echo "scripted-agent: a line on stderr" >&2

if [ -n "${SCRIPTED_AGENT_SLEEP:-}" ]; then
  echo "scripted-agent: sleeping ${SCRIPTED_AGENT_SLEEP}s"
  sleep "$SCRIPTED_AGENT_SLEEP"
fi
echo "scripted-agent: done"
exit "${SCRIPTED_AGENT_EXIT:-0}"
