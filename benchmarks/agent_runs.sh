#!/usr/bin/env bash
# The agent benchmark's runs (issue: budgets inside agent loops). Resumable: rerun the same
# command after a stop and it picks up where it was.
#   bash benchmarks/agent_runs.sh dev langchain|llama-index    # choose on 40 GSM8K train items
#   bash benchmarks/agent_runs.sh heldout langchain|llama-index  # GSM8K test and SVAMP, 80 each
set -euo pipefail
cd "$(dirname "$0")/.."
TALE=${TALE:-.venv/bin/tale}
DATA=${DATA:-../shared/data}
R=benchmarks/results
FRAMEWORK=${2:?say langchain or llama-index}
TAG=${FRAMEWORK/llama-index/llamaindex}

# every configuration of the dev slice (results/agent-selection-rule.md): the reference, the
# default (the model's profile method), per-step budgets from each estimator, forcing without
# exemplars, the single-question default's finalists, a run total only, the Budget Tracker,
# context compression, and (LangChain only) ModelCallLimitMiddleware
DEV="none,tale,tale=tale-heuristic@system,tale=tale-regression@system"
DEV+=",tale=tale-zero-shot@system,tale=tale-heuristic@system+force1.5"
DEV+=",tale=tale-heuristic@concise+ex3+escalate,tale=tale-heuristic@system+ex3+escalate"
DEV+=",total=1200,total=1200&tracker,context=0.5"
HELDOUT="none,tale"
if [ "$FRAMEWORK" = langchain ]; then
  DEV+=",calls=3"
  HELDOUT+=",calls=3"
fi

agents() {  # agents NAME DATA CONFIGS [options...]
  local name=$1 data=$2 configs=$3
  shift 3
  "$TALE" agent-bench --framework "$FRAMEWORK" --data "$data" --configs "$configs" \
    --out "$R/$name.jsonl" --table "$R/$name.md" --plot "$R/$name.png" "$@"
}

case "${1:-}" in
  dev)
    agents "agents-$TAG-gsm8k-train" "$DATA/gsm8k/train.norm.jsonl" "${CONFIGS:-$DEV}" \
      --offset 100 --limit 40 --seed 21
    ;;
  heldout)
    agents "agents-$TAG-gsm8k-test" "$DATA/gsm8k/test.norm.jsonl" "${CONFIGS:-$HELDOUT}" \
      --limit 80 --seed 21
    agents "agents-$TAG-svamp" "$DATA/holdout/svamp/svamp.norm.jsonl" "${CONFIGS:-$HELDOUT}" \
      --limit 80 --seed 21
    ;;
  *)
    echo "usage: $0 dev|heldout langchain|llama-index" >&2
    exit 2
    ;;
esac
