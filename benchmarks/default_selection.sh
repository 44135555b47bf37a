#!/usr/bin/env bash
# The runs behind the default method, by the rule in results/default-selection-rule.md.
# Every stage is resumable: rerun the same command after a stop and it picks up where it was.
#   bash benchmarks/default_selection.sh screen    # stage 1: GSM8K dev 60 + MATH dev 40
#   bash benchmarks/default_selection.sh confirm   # stage 2: GSM8K dev 200 + MATH dev 110
#   bash benchmarks/default_selection.sh heldout   # the report: GSM8K test, SVAMP, MATH-500 test
# FINALISTS (comma-separated method specs) names stage 2's candidates; DEFAULT the chosen one;
# PARETO (optional) methods the held-out report adds beside it, reported only (never chosen).
set -euo pipefail
cd "$(dirname "$0")/.."
TALE=${TALE:-.venv/bin/tale}
DATA=${DATA:-../shared/data}
R=benchmarks/results
BASE="vanilla,vanilla-paper"
SCREEN="tale-heuristic@system+ex3+force1.5,tale-heuristic@concise+ex3+force1.5"
SCREEN+=",tale-heuristic@concise+ex3+escalate,tale-heuristic@system+ex3+escalate,vanilla+ex3"

bench() {  # bench NAME DATA METHODS [options...]: rows, table and plot under results/
  local name=$1 data=$2 methods=$3
  shift 3
  # the base model's rows: --no-adapter, whatever adapter tale ships for it
  "$TALE" bench --no-adapter --data "$data" --methods "$methods" --baseline "$BASE" --by-method \
    --out "$R/$name.jsonl" --table "$R/$name.md" --plot "$R/$name.png" "$@"
}

case "${1:-}" in
  screen)
    bench screen-gsm8k-train "$DATA/gsm8k/train.norm.jsonl" "$BASE,$SCREEN" \
      --offset 100 --limit 60 --seed 0
    bench screen-math500-dev "$DATA/math500-dev/dev.norm.jsonl" "$BASE,$SCREEN" \
      --limit 40 --seed 0 --max-tokens 1536
    ;;
  confirm)
    : "${FINALISTS:?set FINALISTS to the stage-1 finalists (comma-separated)}"
    bench confirm-gsm8k-train "$DATA/gsm8k/train.norm.jsonl" "$BASE,$FINALISTS" \
      --offset 100 --limit 200 --seed 2 --exclude "$R/screen-gsm8k-train.jsonl"
    bench confirm-math500-dev "$DATA/math500-dev/dev.norm.jsonl" "$BASE,$FINALISTS" \
      --exclude "$R/screen-math500-dev.jsonl" --max-tokens 1536
    ;;
  heldout)
    : "${DEFAULT:?set DEFAULT to the method stage 2 chose}"
    HELD="$BASE,$DEFAULT${PARETO:+,$PARETO}"
    bench heldout-gsm8k-test "$DATA/gsm8k/test.norm.jsonl" "$HELD" --limit 300 --seed 22
    bench heldout-svamp "$DATA/holdout/svamp/svamp.norm.jsonl" "$HELD" --limit 300 --seed 22
    bench heldout-math500-test "$DATA/holdout/math500/test.norm.jsonl" "$HELD" \
      --limit 150 --seed 22 --max-tokens 1536
    ;;
  *)
    echo "usage: $0 screen | confirm | heldout" >&2
    exit 2
    ;;
esac
