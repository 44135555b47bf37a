#!/usr/bin/env bash
# Agents that need their tools (issue 40): tool-necessary tasks from split templates
# (tale_shared.research.agent_tasks). Resumable: rerun the same command after a stop.
#   bash benchmarks/agent_tool_runs.sh dev langchain|llama-index      # 48 tasks, dev templates
#   bash benchmarks/agent_tool_runs.sh heldout langchain|llama-index  # 180 tasks, held-out templates
# CONFIGS=... replaces the configurations of either stage.
# Round 2 (files *-r2-*): the second-round templates (agent_tasks.FRESH_HELDOUT and three dev
# templates with two-step arithmetic) on the shipped default model. Round 1's files (20 dev
# tasks, 120 held out, the base model) stay as they were measured.
set -euo pipefail
cd "$(dirname "$0")/.."
TALE=${TALE:-.venv/bin/tale}
R=benchmarks/results
FRAMEWORK=${2:?say langchain or llama-index}
AGENT=()
# the levers, one at a time and together (chosen on dev templates only)
# (round 1 measured none, tool-first, answer-tool, demo and demo&answer-tool; round 2 measures
# the best of them against a plan written before each forced call, and the default's step
# budgets on top of it, for item 3's dev read)
DEV="demo&answer-tool,demo&answer-tool&plan,demo&answer-tool&tale"
if [ "$FRAMEWORK" != langchain ]; then
  AGENT=(--llama-agent function)  # forced calls and chat-history demos need FunctionAgent
fi
# the plain agent the dev templates chose: a worked example with the task's own tools, and
# every reply a call (the final answer through the answer tool)
HELDOUT="demo&answer-tool"

agents() {  # agents NAME SPLIT PER_TEMPLATE CONFIGS BASELINE
  "$TALE" agent-bench --framework "$FRAMEWORK" "${AGENT[@]}" --tasks "$2" --per-template "$3" \
    --seed 0 --configs "$4" --baseline "$5" --out "$R/$1.jsonl" --table "$R/$1.md" \
    --plot "$R/$1.png"
}

case "${1:-}" in
  dev) agents "agents-tools-r2-dev-$FRAMEWORK" dev 6 "${CONFIGS:-$DEV}" "demo&answer-tool" ;;
  heldout)
    agents "agents-tools-r2-heldout-$FRAMEWORK" heldout 20 "${CONFIGS:-$HELDOUT}" "$HELDOUT"
    ;;
  *)
    echo "usage: $0 dev|heldout langchain|llama-index" >&2
    exit 2
    ;;
esac
